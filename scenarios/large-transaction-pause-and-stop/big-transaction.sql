BEGIN;
INSERT INTO big.events SELECT 0 + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000;
INSERT INTO big.events SELECT 5000 + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000;
INSERT INTO big.events SELECT 10000 + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000;
INSERT INTO big.events SELECT 15000 + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000;
COMMIT;
