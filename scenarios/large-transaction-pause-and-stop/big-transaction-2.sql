BEGIN;
INSERT INTO big.events SELECT 20000 + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000;
INSERT INTO big.events SELECT 25000 + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000;
INSERT INTO big.events SELECT 30000 + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000;
INSERT INTO big.events SELECT 35000 + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000;
COMMIT;
