package collect

import (
	"encoding/json"
	"os"
	"testing"
)

func TestBotDetector(t *testing.T) {
	d, err := NewBotDetector()
	if err != nil {
		t.Fatal(err)
	}
	var instances []string
	b, err := os.ReadFile("testdata/bot-instances.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &instances); err != nil {
		t.Fatal(err)
	}
	if len(instances) < 1000 {
		t.Fatalf("only %d known bot user agents to test with", len(instances))
	}
	for _, ua := range instances {
		if !d.IsBot(ua) {
			t.Errorf("not detected as a bot: %q", ua)
		}
	}
	people := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323c) NetType/WIFI Language/zh_CN",
		"Mozilla/5.0 (Linux; Android 14; 23127PN0CC Build/UKQ1.230804.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/118.0.0.0 Mobile Safari/537.36 XWEB/1180065 MMWEBSDK/20240404 MicroMessenger/8.0.49.2600(0x28003137) WeChat/arm64 Weixin NetType/5G Language/zh_CN ABI/arm64",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		"",
	}
	for _, ua := range people {
		if d.IsBot(ua) {
			t.Errorf("a person's browser taken for a bot: %q", ua)
		}
	}
	if d.Source() == "" {
		t.Error("the list does not name its source")
	}
}

func BenchmarkBotDetectorUncached(b *testing.B) {
	d, err := NewBotDetector()
	if err != nil {
		b.Fatal(err)
	}
	ua := "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	for b.Loop() {
		d.match(ua)
	}
}
