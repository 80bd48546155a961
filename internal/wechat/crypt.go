package wechat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/hearth-cdp/hearth"
)

// Safe mode, WeChat's message encryption. An encrypted message is
//
//	base64(AES-256-CBC(key, iv = key[:16], PKCS#7 to 32 bytes(random 16 bytes | len(msg) uint32 BE | msg | appid)))
//
// where key is the account's 43-character EncodingAESKey decoded as base64. CBC has no integrity of its own:
// check msg_signature (VerifyMsgSignature) before decrypting, or the padding check becomes an oracle.

// EncodingAESKeyLen is the length of an EncodingAESKey: 32 bytes in base64 without its "=".
const EncodingAESKeyLen = 43

// WeChat pads to multiples of 32 bytes, not AES's 16.
const padBlock = 32

// ValidateEncodingAESKey checks that key is 43 characters of base64, as the WeChat console issues it.
func ValidateEncodingAESKey(key string) error {
	_, err := aesKey(key)
	return err
}

func aesKey(encodingAESKey string) ([]byte, error) {
	const op = "wechat.encoding_aes_key"
	if len(encodingAESKey) != EncodingAESKeyLen {
		return nil, hearth.Errorf(hearth.Invalid, op, "The EncodingAESKey must be %d characters long.", EncodingAESKeyLen)
	}
	for i := range len(encodingAESKey) {
		if !isBase64Char(encodingAESKey[i]) {
			return nil, hearth.Errorf(hearth.Invalid, op, "The EncodingAESKey may hold only letters, digits, + and /.")
		}
	}
	// Not Strict: the console's keys are 43 random characters, whose last one often has low bits set.
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, invalid(op, "The EncodingAESKey is not valid base64.", err)
	}
	return key, nil
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}

// Encrypt encrypts msg for the account appID, as WeChat encrypts callbacks and expects passive replies.
func Encrypt(encodingAESKey, appID string, msg []byte) (string, error) {
	key, err := aesKey(encodingAESKey)
	if err != nil {
		return "", err
	}
	return encrypt(key, appID, msg, rand.Reader)
}

func encrypt(key []byte, appID string, msg []byte, random io.Reader) (string, error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return "", hearth.Errorf(hearth.TooLarge, "wechat.encrypt", "The message is too large to encrypt.")
	}
	size := 16 + 4 + len(msg) + len(appID)
	pad := padBlock - size%padBlock
	plain := make([]byte, size+pad)
	if _, err := io.ReadFull(random, plain[:16]); err != nil {
		return "", &hearth.Error{Kind: hearth.Internal, Op: "wechat.encrypt", Err: fmt.Errorf("wechat: random prefix: %w", err)}
	}
	binary.BigEndian.PutUint32(plain[16:20], uint32(len(msg)))
	copy(plain[20:], msg)
	copy(plain[20+len(msg):], appID)
	for i := size; i < len(plain); i++ {
		plain[i] = byte(pad)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", &hearth.Error{Kind: hearth.Internal, Op: "wechat.encrypt", Err: fmt.Errorf("wechat: %w", err)}
	}
	cipher.NewCBCEncrypter(block, key[:aes.BlockSize]).CryptBlocks(plain, plain)
	return base64.StdEncoding.EncodeToString(plain), nil
}

// Decrypt decrypts a safe-mode message and checks its padding, its length and that it was encrypted for
// appID. Verify its msg_signature first. An error is Invalid and says nothing of the message.
func Decrypt(encodingAESKey, appID, encrypted string) ([]byte, error) {
	const op = "wechat.decrypt"
	key, err := aesKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	refuse := func(why string) error {
		return invalid(op, "The encrypted message cannot be decrypted.", fmt.Errorf("wechat: decrypt: %s", why))
	}
	data, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return nil, invalid(op, "The encrypted message is not base64.", fmt.Errorf("wechat: decrypt: %w", err))
	}
	if len(data) < padBlock || len(data)%aes.BlockSize != 0 {
		return nil, refuse(fmt.Sprintf("%d bytes is not a whole number of blocks", len(data)))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, &hearth.Error{Kind: hearth.Internal, Op: op, Err: fmt.Errorf("wechat: %w", err)}
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, key[:aes.BlockSize]).CryptBlocks(plain, data)

	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > padBlock {
		return nil, refuse("bad padding")
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, refuse("bad padding")
		}
	}
	content := plain[:len(plain)-pad]
	if len(content) < 20 {
		return nil, refuse("too short")
	}
	msgLen := binary.BigEndian.Uint32(content[16:20])
	body := content[20:]
	if uint64(msgLen) > uint64(len(body)) {
		return nil, refuse("length beyond the message")
	}
	if string(body[msgLen:]) != appID {
		return nil, refuse("encrypted for another app id")
	}
	return body[:msgLen:msgLen], nil
}
