package profile

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/identity"
)

// ConfigSetting is the name of the stored setting that holds the Config.
const ConfigSetting = "profiles"

// Config is everything an admin sets of profiles, kept as one document: the identity rules, and the
// mappings, trait rules and lifecycle. As JSON:
//
//	{"identity": {…identity rules…}, "mappings": […], "traits": […], "lifecycle": {…}}
//
// Absent members take their defaults. The processor follows a change within a second; events it processed
// before keep what they gave.
type Config struct {
	Identity identity.Rules
	Settings
}

// DefaultConfig is the configuration of a new Hearth.
func DefaultConfig() Config {
	return Config{Identity: identity.DefaultRules(), Settings: DefaultSettings()}
}

type configJSON struct {
	Identity  json.RawMessage `json:"identity,omitempty"`
	Mappings  json.RawMessage `json:"mappings,omitempty"`
	Traits    json.RawMessage `json:"traits,omitempty"`
	Lifecycle json.RawMessage `json:"lifecycle,omitempty"`
}

// ParseConfig reads a Config as JSON and checks it; the error, Invalid, names every problem.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	var in configJSON
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil {
		return c, &hearth.Error{Kind: hearth.Invalid, Op: "profile.config", Code: "invalid_profile_settings",
			Msg: "The profile settings must be a JSON object with identity, mappings, traits and lifecycle.", Err: err}
	}
	if len(in.Identity) > 0 {
		rules, err := identity.ParseRules(in.Identity)
		if err != nil {
			return c, err
		}
		c.Identity = rules
	}
	rest, _ := json.Marshal(struct {
		Mappings  json.RawMessage `json:"mappings,omitempty"`
		Traits    json.RawMessage `json:"traits,omitempty"`
		Lifecycle json.RawMessage `json:"lifecycle,omitempty"`
	}{in.Mappings, in.Traits, in.Lifecycle})
	s, err := ParseSettings(rest)
	if err != nil {
		return c, err
	}
	c.Settings = s
	return c, nil
}

// MarshalJSON writes the Config as ParseConfig reads it, every member given.
func (c Config) MarshalJSON() ([]byte, error) {
	s := c.Settings
	if s.Mappings == nil {
		s.Mappings = []Mapping{}
	}
	if s.Traits == nil {
		s.Traits = []TraitRule{}
	}
	return json.Marshal(struct {
		Identity identity.Rules `json:"identity"`
		Settings
	}{c.Identity, s})
}

// SettingStore keeps settings as JSON documents by name.
type SettingStore interface {
	// Setting returns a setting's JSON, or nil when it was never set.
	Setting(ctx context.Context, name string) ([]byte, error)
	PutSetting(ctx context.Context, name string, value []byte, by string) error
}

// Configs reads and changes the stored Config.
type Configs struct{ store SettingStore }

// NewConfigs returns the Configs kept in store.
func NewConfigs(store SettingStore) *Configs { return &Configs{store: store} }

// Get returns the stored Config, or the default one.
func (c *Configs) Get(ctx context.Context) (Config, error) {
	raw, err := c.store.Setting(ctx, ConfigSetting)
	if err != nil || raw == nil {
		return DefaultConfig(), err
	}
	return ParseConfig(raw)
}

// Put checks a Config given as JSON and stores it, written out whole; by names who changed it.
func (c *Configs) Put(ctx context.Context, data []byte, by string) (Config, error) {
	cfg, err := ParseConfig(data)
	if err != nil {
		return cfg, err
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return cfg, err
	}
	return cfg, c.store.PutSetting(ctx, ConfigSetting, out, by)
}
