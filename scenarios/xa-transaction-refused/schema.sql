CREATE DATABASE xa;
CREATE TABLE xa.payments (id INT PRIMARY KEY, note VARCHAR(60) NOT NULL);
INSERT INTO xa.payments VALUES (1, 'before the task');
