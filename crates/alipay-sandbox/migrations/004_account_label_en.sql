-- Account names in two languages: `label` keeps the Chinese name, `label_en` the English. The
-- names the sandbox gave its own accounts and default personas' sources get their other language;
-- any other name is the same text in both (the tester who made it wrote one).
ALTER TABLE accounts ADD COLUMN label_en TEXT NOT NULL DEFAULT '';
UPDATE accounts SET label_en = CASE label
    WHEN '账户余额' THEN 'Alipay balance'
    WHEN '余额宝' THEN 'Yu''e Bao'
    WHEN '花呗' THEN 'Huabei'
    WHEN '工商银行储蓄卡' THEN 'ICBC debit card'
    WHEN '建设银行储蓄卡' THEN 'CCB debit card'
    WHEN '农业银行储蓄卡' THEN 'ABC debit card'
    WHEN '招商银行信用卡' THEN 'CMB credit card'
    WHEN '中国银行信用卡' THEN 'BOC credit card'
    ELSE label END;
UPDATE accounts SET label = '期初余额' WHERE id = 'sandbox:mint' AND label = 'opening balances';
UPDATE accounts SET label = '支付宝手续费' WHERE id = 'sandbox:fees' AND label = 'Alipay fees';
