CREATE DATABASE shop4;
CREATE TABLE shop4.customers (id INT PRIMARY KEY, name VARCHAR(40));
CREATE TABLE shop4.orders (id INT PRIMARY KEY, customer_id INT NOT NULL,
  FOREIGN KEY (customer_id) REFERENCES shop4.customers (id) ON DELETE CASCADE);
CREATE TABLE shop4.order_lines (id INT PRIMARY KEY, order_id INT NOT NULL,
  FOREIGN KEY (order_id) REFERENCES shop4.orders (id) ON DELETE CASCADE);
CREATE TABLE shop4.line_notes (id INT PRIMARY KEY, line_id INT,
  FOREIGN KEY (line_id) REFERENCES shop4.order_lines (id) ON DELETE SET NULL);
CREATE TABLE shop4.staff (id INT PRIMARY KEY, manager_id INT NULL,
  FOREIGN KEY (manager_id) REFERENCES shop4.staff (id) ON DELETE CASCADE);
CREATE TABLE shop4.zz_filler (id INT PRIMARY KEY, pad CHAR(20) NOT NULL);
INSERT INTO shop4.customers SELECT seq, CONCAT('customer ', seq) FROM mysql.seq_1_to_4;
INSERT INTO shop4.orders SELECT seq, 1 + seq % 4 FROM mysql.seq_1_to_40;
INSERT INTO shop4.order_lines SELECT seq, 1 + seq % 40 FROM mysql.seq_1_to_200;
INSERT INTO shop4.line_notes SELECT seq, 1 + seq % 200 FROM mysql.seq_1_to_400;
INSERT INTO shop4.staff VALUES (1, NULL), (2, 1), (3, 2), (4, 3), (5, 4), (6, 1), (7, NULL), (8, 7), (9, 8), (10, 9), (11, NULL);
INSERT INTO shop4.zz_filler SELECT seq, 'filler' FROM mysql.seq_1_to_8000;
