-- Which lifecycle steps a profile meets, each on its own, a bit each: identified 1, connected 2, activated 4,
-- converted 8 (profile.Steps.Bits), in place of the stage, the furthest step met; the steps say more, because a step
-- does not need the ones before it: an anonymous visitor who views a product is activated, not identified.
-- The home screen counts people by step, and segments select them ("stage reached"), from this column.
ALTER TABLE profiles ADD COLUMN steps INTEGER NOT NULL DEFAULT 0;
-- The rules as profile.stepsOf applies them (docs/identity.md): identified by any identifier beyond an
-- anonymous or device id; connected by an email, phone or WeChat openid whose consent trait is not false.
UPDATE profiles SET steps =
	CASE WHEN EXISTS (SELECT 1 FROM identities i WHERE i.profile_id = profiles.id AND i.type NOT IN ('anonymous_id', 'device_id'))
		THEN 1 ELSE 0 END
	+ CASE WHEN EXISTS (SELECT 1 FROM identities i WHERE i.profile_id = profiles.id AND (
			i.type = 'email' AND NOT EXISTS (SELECT 1 FROM profile_traits t WHERE t.profile_id = profiles.id AND t.name = 'email_subscribed' AND t.value = 'false')
			OR i.type = 'phone' AND NOT EXISTS (SELECT 1 FROM profile_traits t WHERE t.profile_id = profiles.id AND t.name = 'sms_subscribed' AND t.value = 'false')
			OR i.type = 'wechat_openid' AND NOT EXISTS (SELECT 1 FROM profile_traits t WHERE t.profile_id = profiles.id AND t.name = 'wechat_subscribed' AND t.value = 'false')))
		THEN 2 ELSE 0 END
	+ CASE WHEN activated_at IS NOT NULL THEN 4 ELSE 0 END
	+ CASE WHEN converted_at IS NOT NULL THEN 8 ELSE 0 END;
-- The stage is the furthest step met (profile.Steps.Stage): the row keeps the steps alone, and conditions on the
-- stage read them too (a stage is a set of combinations of steps), from one index.
CREATE INDEX profiles_steps ON profiles (steps, id);
DROP INDEX profiles_stage;
ALTER TABLE profiles DROP COLUMN stage;
