-- Default texts that read naturally with and without a name: {inviter} is now "你的好友小明"
-- or "一位好友" (a whole phrase), and no spaces sit around the placeholders. Campaigns still
-- holding the old defaults get the new ones; texts an operator wrote are left as they are.
ALTER TABLE campaigns
    ALTER COLUMN welcome_text SET DEFAULT '欢迎关注！{inviter}邀请你来到这里。',
    ALTER COLUMN credit_text SET DEFAULT '{invitee}通过你的邀请关注了公众号，你已邀请 {count} 位好友。{next}';

UPDATE campaigns SET welcome_text = '欢迎关注！{inviter}邀请你来到这里。'
 WHERE welcome_text = '欢迎关注！你是通过 {inviter} 的邀请来的。';
UPDATE campaigns SET credit_text = '{invitee}通过你的邀请关注了公众号，你已邀请 {count} 位好友。{next}'
 WHERE credit_text = '{invitee} 通过你的邀请关注了公众号，你已邀请 {count} 位好友。{next}';
