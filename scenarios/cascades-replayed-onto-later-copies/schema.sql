-- Copied in name order by one worker, 500 rows a chunk: order lines, a self-referencing chain cut in two chunks,
-- orders, customers, then a parent whose unique sku its children (and their children) follow.
CREATE DATABASE shop5;
CREATE TABLE shop5.d_customers (id INT PRIMARY KEY, name VARCHAR(40));
CREATE TABLE shop5.c_orders (id INT PRIMARY KEY, customer_id INT NOT NULL,
  FOREIGN KEY (customer_id) REFERENCES shop5.d_customers (id) ON DELETE CASCADE);
CREATE TABLE shop5.a_order_lines (id INT PRIMARY KEY, order_id INT NOT NULL, qty INT NOT NULL,
  FOREIGN KEY (order_id) REFERENCES shop5.c_orders (id) ON DELETE CASCADE);
CREATE TABLE shop5.b_staff (id INT PRIMARY KEY, manager_id INT NULL,
  FOREIGN KEY (manager_id) REFERENCES shop5.b_staff (id) ON DELETE CASCADE);
CREATE TABLE shop5.f_products (id INT PRIMARY KEY, sku VARCHAR(8) NOT NULL UNIQUE);
CREATE TABLE shop5.e_variants (id INT PRIMARY KEY, sku VARCHAR(8), n INT NOT NULL, UNIQUE (sku, n),
  FOREIGN KEY (sku) REFERENCES shop5.f_products (sku) ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE shop5.e_variant_photos (id INT PRIMARY KEY, sku VARCHAR(8), n INT, caption VARCHAR(20),
  FOREIGN KEY (sku, n) REFERENCES shop5.e_variants (sku, n) ON DELETE SET NULL ON UPDATE CASCADE);
INSERT INTO shop5.d_customers SELECT seq, CONCAT('customer ', seq) FROM mysql.seq_1_to_4;
INSERT INTO shop5.c_orders SELECT seq, 1 + seq % 4 FROM mysql.seq_1_to_40;
INSERT INTO shop5.a_order_lines SELECT seq, 1 + seq % 40, seq FROM mysql.seq_1_to_200;
-- Chains across the chunk boundary at 500: 900 -> 5 -> 901 -> 6 -> 902 -> 7, and 950 -> 10 -> 951 -> 11.
INSERT INTO shop5.b_staff SELECT seq, NULL FROM mysql.seq_1_to_1000;
UPDATE shop5.b_staff SET manager_id = 900 WHERE id = 5;
UPDATE shop5.b_staff SET manager_id = 5 WHERE id = 901;
UPDATE shop5.b_staff SET manager_id = 901 WHERE id = 6;
UPDATE shop5.b_staff SET manager_id = 6 WHERE id = 902;
UPDATE shop5.b_staff SET manager_id = 902 WHERE id = 7;
UPDATE shop5.b_staff SET manager_id = 950 WHERE id = 10;
UPDATE shop5.b_staff SET manager_id = 10 WHERE id = 951;
UPDATE shop5.b_staff SET manager_id = 951 WHERE id = 11;
INSERT INTO shop5.f_products VALUES (1, 'A'), (2, 'B'), (3, 'C'), (4, 'D');
INSERT INTO shop5.e_variants SELECT seq, ELT(1 + seq % 4, 'A', 'B', 'C', 'D'), seq FROM mysql.seq_1_to_40;
INSERT INTO shop5.e_variant_photos SELECT seq, ELT(1 + (1 + seq % 40) % 4, 'A', 'B', 'C', 'D'), 1 + seq % 40, 'photo'
  FROM mysql.seq_1_to_80;
