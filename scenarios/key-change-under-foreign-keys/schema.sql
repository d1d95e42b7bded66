CREATE DATABASE fk;
CREATE TABLE fk.products (id INT PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE, name VARCHAR(40));
CREATE TABLE fk.reviews (id INT PRIMARY KEY, product_sku VARCHAR(20),
  FOREIGN KEY (product_sku) REFERENCES fk.products (sku) ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE fk.stock (id INT PRIMARY KEY, product_id INT,
  FOREIGN KEY (product_id) REFERENCES fk.products (id) ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE fk.regions (id INT PRIMARY KEY, code VARCHAR(20) NOT NULL UNIQUE);
CREATE TABLE fk.stores (id INT PRIMARY KEY, region_code VARCHAR(20),
  FOREIGN KEY (region_code) REFERENCES fk.regions (code) ON DELETE SET NULL);
CREATE TABLE fk.zz_filler (id INT PRIMARY KEY, pad CHAR(20) NOT NULL);
INSERT INTO fk.products VALUES (1, 'SKU-1', 'one'), (2, 'SKU-2', 'two'), (3, 'SKU-3', 'three');
INSERT INTO fk.reviews SELECT seq, CONCAT('SKU-', 1 + seq % 3) FROM mysql.seq_1_to_30;
INSERT INTO fk.stock SELECT seq, 1 + seq % 3 FROM mysql.seq_1_to_30;
INSERT INTO fk.regions VALUES (1, 'EU'), (2, 'US'), (3, 'APAC');
INSERT INTO fk.stores SELECT seq, ELT(1 + seq % 3, 'EU', 'US', 'APAC') FROM mysql.seq_1_to_30;
INSERT INTO fk.zz_filler SELECT seq, 'filler' FROM mysql.seq_1_to_8000;
