package collect

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
)

// botPatterns is the crawler-user-agents list (github.com/monperrus/crawler-user-agents, MIT), refreshed by
// scripts/update-botlist: a maintained list rather than one of our own.
//
//go:embed botlist/patterns.json
var botPatterns []byte

// BotDetector tells bots, crawlers and link scanners from people by their user agent.
type BotDetector struct {
	// Most patterns are plain text, found with strings.Contains; the few real expressions share one regexp.
	// One regexp of all 1,500 would be far slower: so large an alternation runs on the NFA.
	literals []string
	re       *regexp.Regexp
	source   string

	mu    sync.Mutex
	cache map[string]bool // user agents repeat a great deal; matching 1,500 patterns does not need to
}

const botCacheSize = 10000

// NewBotDetector compiles the embedded list.
func NewBotDetector() (*BotDetector, error) {
	var list struct {
		Source   string   `json:"source"`
		Patterns []string `json:"patterns"`
	}
	if err := json.Unmarshal(botPatterns, &list); err != nil {
		return nil, fmt.Errorf("collect: bot list: %w", err)
	}
	d := &BotDetector{source: list.Source, cache: make(map[string]bool)}
	var exprs []string
	for _, p := range list.Patterns {
		re, err := syntax.Parse(p, syntax.Perl)
		if err != nil {
			return nil, fmt.Errorf("collect: bot list: pattern %q: %w", p, err)
		}
		if re = re.Simplify(); re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0 {
			d.literals = append(d.literals, string(re.Rune))
		} else {
			exprs = append(exprs, "(?:"+p+")")
		}
	}
	re, err := regexp.Compile(strings.Join(exprs, "|"))
	if err != nil {
		return nil, fmt.Errorf("collect: bot list: %w", err)
	}
	d.re = re
	return d, nil
}

// Source names the list and its version.
func (d *BotDetector) Source() string { return d.source }

// IsBot reports whether a user agent belongs to a bot. An empty user agent is not judged here.
func (d *BotDetector) IsBot(ua string) bool {
	if ua == "" {
		return false
	}
	d.mu.Lock()
	bot, ok := d.cache[ua]
	d.mu.Unlock()
	if ok {
		return bot
	}
	bot = d.match(ua)
	d.mu.Lock()
	if len(d.cache) >= botCacheSize {
		clear(d.cache)
	}
	d.cache[ua] = bot
	d.mu.Unlock()
	return bot
}

func (d *BotDetector) match(ua string) bool {
	for _, lit := range d.literals {
		if strings.Contains(ua, lit) {
			return true
		}
	}
	return d.re.MatchString(ua)
}
