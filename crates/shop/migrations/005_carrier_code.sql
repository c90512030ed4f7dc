-- A waybill names its carrier by code (`Carrier` in shop-api), and the app shows the carrier's
-- name in the reader's language. Orders shipped before this version hold the old display name.
UPDATE orders SET carrier = 'haitao_express' WHERE carrier = '海淘国际物流 Haitao Express';
