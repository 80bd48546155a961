package identity

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	tests := []struct {
		id   Identifier
		want string
	}{
		{Identifier{Email, "li.lei@example.com"}, "email:l***@e***.com"},
		{Identifier{Email, "wang@mail.corp.cn"}, "email:w***@m***.cn"},
		{Identifier{Email, "用户@例子.广告"}, "email:用***@例***.广告"},
		{Identifier{Phone, "+8613812345678"}, "phone:+86138****5678"},
		{Identifier{Phone, "+861065529988"}, "phone:+8610****9988"},
		{Identifier{Phone, "+85261234567"}, "phone:+852****4567"},
		{Identifier{Phone, "+3541234567"}, "phone:+35******67"},
		{Identifier{UserID, "user-164084"}, "user_id:u***"},
		{Identifier{UserID, "会员-张三"}, "user_id:会***"},
		{Identifier{WeChatOpenID, "oK3xR5d8Tq2vWm9ZpL4sYbN7cHfJ"}, "wechat_openid:oK3x***fJ"},
		{Identifier{AnonymousID, "7f3c9e2a-1b4d-4c8e-9a6f-2d5b8c1e0f37"}, "anonymous_id:7f3c***37"},
		{Identifier{"member_no", "M-0001"}, "member_no:M***"},
		{Identifier{Email, "not-an-address"}, "email:n***"},
		{Identifier{Phone, "12345"}, "phone:1***"},
		{Identifier{UserID, ""}, "user_id:***"},
	}
	for _, tt := range tests {
		if got := tt.id.Redacted(); got != tt.want {
			t.Errorf("%s redacted = %q, want %q", tt.id, got, tt.want)
		}
	}
}

// TestLogValue checks that identifiers never reach a log whole, however they are logged.
func TestLogValue(t *testing.T) {
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		email := Identifier{Email, "li.lei@example.com"}
		phone := Identifier{Phone, "+8613812345678"}
		openid := Identifier{WeChatOpenID, "oK3xR5d8Tq2vWm9ZpL4sYbN7cHfJ"}
		log.Info("merged", "identifier", email, slog.Any("by", phone), slog.Group("g", "openid", openid))
		log.Info("list", "identifiers", []slog.Value{email.LogValue(), phone.LogValue()})
	}
	out := buf.String()
	for _, secret := range []string{"li.lei", "example.com", "13812345678", "R5d8Tq2vWm9ZpL4sYbN7"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "email:l***@e***.com") || !strings.Contains(out, "phone:+86138****5678") {
		t.Errorf("the log lacks the redacted identifiers:\n%s", out)
	}
}

func TestString(t *testing.T) {
	id := Identifier{Email, "li@qq.com"}
	if got := id.String(); got != "email:li@qq.com" {
		t.Errorf("String() = %q", got)
	}
	if got := fmt.Sprint(id); got != "email:li@qq.com" {
		t.Errorf("Sprint = %q", got)
	}
}
