CREATE DATABASE orm;
CREATE TABLE orm.accounts (id INT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(12,2) NOT NULL);
INSERT INTO orm.accounts SELECT seq, CONCAT('owner ', seq), 100 FROM mysql.seq_1_to_10;
