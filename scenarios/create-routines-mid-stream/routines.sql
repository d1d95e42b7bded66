CREATE VIEW shop.recent_orders AS SELECT id, customer_id, status FROM shop.orders WHERE ordered_on > '2020-01-01';

DELIMITER //
CREATE PROCEDURE shop.count_orders(OUT n INT)
READS SQL DATA
BEGIN
  SELECT COUNT(*) INTO n FROM shop.orders;
END //
CREATE FUNCTION shop.customer_name(p_id INT UNSIGNED) RETURNS VARCHAR(100) READS SQL DATA
BEGIN
  RETURN (SELECT name FROM shop.customers WHERE id = p_id);
END //
DELIMITER ;
