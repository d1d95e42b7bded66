//! Canonical row encoding + sha256 throughput (rows/s), the verifier's hot path.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferry_engine::value::Value;
use ferry_verifier::canonical::row_hash;
use std::hint::black_box;

fn sysbench_row(i: u64) -> Vec<Value> {
    // id, k, c CHAR(120), pad CHAR(60): the sysbench oltp table.
    vec![
        Value::Int(i as i64),
        Value::Int((i * 7919 % 100_000) as i64),
        Value::Bytes(format!("{:0>120}", i * 31).into_bytes()),
        Value::Bytes(format!("{:0>60}", i * 17).into_bytes()),
    ]
}

fn bench(c: &mut Criterion) {
    let rows: Vec<Vec<Value>> = (0..10_000).map(sysbench_row).collect();
    let json = [false; 4];
    let mut g = c.benchmark_group("canonical_hash");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_with_input(
        BenchmarkId::new("sysbench_rows", rows.len()),
        &rows,
        |b, rows| {
            b.iter(|| {
                for r in rows {
                    black_box(row_hash(black_box(r), &json));
                }
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
