#!/bin/sh
# Entrypoint of ferry's locally built MariaDB image: initialize the datadir on first start, make sure the
# root@'%' account has the password from FERRY_ROOT_PASSWORD, then run mariadbd with the arguments given.
set -eu
datadir=/var/lib/mysql
password="${FERRY_ROOT_PASSWORD:-ferry}"
mkdir -p "$datadir" /run/mysqld
if [ ! -d "$datadir/mysql" ]; then
  mariadb-install-db --no-defaults --datadir="$datadir" --user=root \
    --auth-root-authentication-method=normal --skip-test-db >/tmp/install-db.log 2>&1 \
    || { cat /tmp/install-db.log >&2; exit 1; }
fi
cat >/run/mysqld/init.sql <<SQL
DELETE FROM mysql.global_priv WHERE User='root' AND Host NOT IN ('localhost', '%');
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$password';
ALTER USER 'root'@'%' IDENTIFIED BY '$password';
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
SQL
exec mariadbd --no-defaults --user=root --datadir="$datadir" --socket=/run/mysqld/mysqld.sock \
  --bind-address=0.0.0.0 --port=3306 --skip-name-resolve --init-file=/run/mysqld/init.sql "$@"
