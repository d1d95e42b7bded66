//! The `sakila` workload: rentals with payments, returns, customer and film changes (the source's film triggers
//! write film_text), new films with actors, deletes whose FK sets payments' rental to NULL, and primary keys of
//! actors and cities that change under ON UPDATE CASCADE (child changes the binlog does not carry).

use super::{pick, Ctx};
use ferry_engine::error::{Result, ResultExt};
use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::Rng;

const TABLES: &[(&str, &str)] = &[
    ("customer", "customer_id"),
    ("inventory", "inventory_id"),
    ("rental", "rental_id"),
    ("payment", "payment_id"),
    ("film", "film_id"),
    ("actor", "actor_id"),
    ("address", "address_id"),
    ("city", "city_id"),
];

/// The highest ids rows are picked below.
pub async fn context(c: &mut mysql_async::Conn) -> Result<Ctx> {
    let mut ctx = Ctx::default();
    for &(t, id) in TABLES {
        let top: Option<u64> = c
            .query_first(format!(
                "SELECT CAST(COALESCE(MAX({id}), 1) AS UNSIGNED) FROM sakila.{t}"
            ))
            .await
            .ctx("workload")?;
        ctx.tops.insert(t, top.unwrap_or(1));
    }
    Ok(ctx)
}

fn p(rng: &mut StdRng, ctx: &Ctx, var: &str, table: &'static str) -> String {
    let id = TABLES
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, id)| *id)
        .unwrap_or("id");
    pick(rng, var, &format!("sakila.{table}"), id, ctx.top(table), "")
}

/// The statements of one transaction.
pub fn transaction(rng: &mut StdRng, ctx: &Ctx, writer: usize, n: u64) -> Vec<String> {
    let staff = rng.random_range(1..=2);
    match rng.random_range(0..100) {
        // A rental and its payment.
        0..=24 => vec![
            p(rng, ctx, "@c", "customer"),
            p(rng, ctx, "@i", "inventory"),
            format!(
                "INSERT INTO sakila.rental (rental_date, inventory_id, customer_id, staff_id) \
                 VALUES (NOW() - INTERVAL {} SECOND, @i, @c, {staff})",
                rng.random_range(0..10_000_000)
            ),
            format!(
                "INSERT INTO sakila.payment (customer_id, staff_id, rental_id, amount, payment_date) \
                 VALUES (@c, {staff}, LAST_INSERT_ID(), {}.{:02}, NOW())",
                rng.random_range(0..12),
                rng.random_range(0..100)
            ),
        ],
        // A return.
        25..=39 => vec![
            p(rng, ctx, "@r", "rental"),
            "UPDATE sakila.rental SET return_date = NOW() WHERE rental_id = @r".to_string(),
        ],
        // A customer changes email and activity.
        40..=52 => vec![
            p(rng, ctx, "@c", "customer"),
            format!(
                "UPDATE sakila.customer SET email = 'w{writer}.{n}.{}@sakilacustomer.org', active = 1 - active \
                 WHERE customer_id = @c",
                rng.random::<u16>()
            ),
        ],
        // A film is repriced and redescribed (the source's trigger updates film_text).
        53..=61 => vec![
            p(rng, ctx, "@f", "film"),
            format!(
                "UPDATE sakila.film SET rental_rate = rental_rate + 0.01, description = CONCAT(LEFT(description, 200), \
                 ' ✓{n}'), special_features = '{}' WHERE film_id = @f",
                ["Trailers", "Deleted Scenes,Behind the Scenes", ""][rng.random_range(0..3)]
            ),
        ],
        // A new film with two actors and a category.
        62..=66 => vec![
            format!(
                "INSERT INTO sakila.film (title, description, release_year, language_id, rental_duration, \
                 rental_rate, length, replacement_cost, rating) VALUES ('W{writer} FILM {n}', 'Written by writer \
                 {writer}', {}, 1, 5, 2.99, {}, 19.99, '{}')",
                rng.random_range(1990..2026),
                rng.random_range(40..200),
                ["G", "PG", "PG-13", "R", "NC-17"][rng.random_range(0..5)]
            ),
            "SET @f = LAST_INSERT_ID()".to_string(),
            p(rng, ctx, "@a", "actor"),
            "INSERT INTO sakila.film_actor (actor_id, film_id) VALUES (@a, @f)".to_string(),
            p(rng, ctx, "@b", "actor"),
            "INSERT IGNORE INTO sakila.film_actor (actor_id, film_id) VALUES (@b, @f)".to_string(),
            format!(
                "INSERT INTO sakila.film_category (film_id, category_id) VALUES (@f, {})",
                rng.random_range(1..=16)
            ),
        ],
        // A payment is deleted.
        67..=73 => vec![
            p(rng, ctx, "@p", "payment"),
            "DELETE FROM sakila.payment WHERE payment_id = @p".to_string(),
        ],
        // A rental is deleted: its payments' rental_id becomes NULL by ON DELETE SET NULL (not in the binlog).
        74..=80 => vec![
            p(rng, ctx, "@r", "rental"),
            "DELETE FROM sakila.rental WHERE rental_id = @r".to_string(),
        ],
        // An actor's id changes: film_actor follows by ON UPDATE CASCADE (not in the binlog).
        81..=85 => vec![
            p(rng, ctx, "@a", "actor"),
            format!(
                "UPDATE sakila.actor SET actor_id = {} WHERE actor_id = @a",
                1000 + writer as u64 * 16_000 + n % 16_000
            ),
        ],
        // A city's id changes: addresses follow by ON UPDATE CASCADE.
        86..=88 => vec![
            p(rng, ctx, "@t", "city"),
            format!(
                "UPDATE sakila.city SET city_id = {} WHERE city_id = @t",
                1000 + writer as u64 * 16_000 + n % 16_000
            ),
        ],
        // An address changes phone and district.
        89..=94 => vec![
            p(rng, ctx, "@d", "address"),
            format!(
                "UPDATE sakila.address SET phone = '{}', district = 'District {writer}' WHERE address_id = @d",
                rng.random_range(100_000_000u64..999_999_999)
            ),
        ],
        // An actor leaves a film.
        _ => vec![
            p(rng, ctx, "@a", "actor"),
            "SET @f = (SELECT film_id FROM sakila.film_actor WHERE actor_id = @a ORDER BY film_id LIMIT 1)"
                .to_string(),
            "DELETE FROM sakila.film_actor WHERE actor_id = @a AND film_id = @f".to_string(),
        ],
    }
}
