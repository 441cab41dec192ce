//! glibc's malloc, for real: a trim gives back the free pages in the middle of a heap,
//! which `free` keeps; with `M_MMAP_THRESHOLD` set below a block's size, the block has
//! its own mapping and goes back to the kernel when freed, where a heap would keep it.
//! Each test reads its whole process' memory, so they run one at a time.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Mutex;

use glibc_malloc::{Parameter, in_use, set, trim};

/// Held by each test: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The process' anonymous resident memory (`RssAnon` of /proc/self/status), KiB.
fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("RssAnon:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn trim_returns_the_free_pages_inside_a_heap() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    // 48 MiB in blocks of 16 KiB (below the mmap threshold: they come from a heap),
    // written so that their pages are resident.
    let mut blocks: Vec<Vec<u8>> = (0..3072).map(|i| vec![i as u8 | 1; 16 * 1024]).collect();
    // Free all but every 64th: the heap stays as long as its last block, so `free`
    // can give nothing back from the top, and 47 MiB lie free inside it.
    let mut index = 0;
    blocks.retain(|_| {
        index += 1;
        index % 64 == 0
    });
    let before = rss_anon_kib();
    assert!(trim(), "malloc_trim released nothing");
    let after = rss_anon_kib();
    assert!(
        before >= after + 32 * 1024,
        "RssAnon {before} KiB before the trim, {after} KiB after: not 32 MiB less"
    );
    assert!(blocks.iter().all(|block| block[0] & 1 == 1));
}

#[test]
fn blocks_above_the_mmap_threshold_go_back_when_freed() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    set(Parameter::MmapThreshold, 64 * 1024).unwrap();
    set(Parameter::TrimThreshold, 128 * 1024).unwrap();
    let before = rss_anon_kib();
    // 32 MiB in blocks of 96 KiB (below glibc's default threshold of 128 KiB), each
    // followed by a small block that stays: in a heap, the freed blocks could not
    // merge into its top and would stay resident.
    let mut big = Vec::new();
    let mut small = Vec::new();
    for i in 0..340 {
        big.push(vec![i as u8 | 1; 96 * 1024]);
        small.push(vec![i as u8; 64]);
    }
    let full = rss_anon_kib();
    assert!(
        full >= before + 30 * 1024,
        "{before} KiB before, {full} KiB with the blocks"
    );
    drop(big);
    let after = rss_anon_kib();
    assert!(
        after + 28 * 1024 <= full,
        "RssAnon {full} KiB with the blocks, {after} KiB once freed: not 28 MiB less"
    );
    assert!(small.iter().all(|block| block.len() == 64));
}

#[test]
fn in_use_counts_the_blocks_held_and_not_those_freed() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let before = in_use().unwrap();
    // 16 MiB in blocks of 16 KiB, from a heap, and one 8 MiB block mapped on its own.
    let blocks: Vec<Vec<u8>> = (0..1024).map(|i| vec![i as u8 | 1; 16 * 1024]).collect();
    let mapped = vec![1u8; 8 << 20];
    let held = in_use().unwrap();
    assert!(
        held >= before + (24 << 20),
        "{before} bytes in use before, {held} with 24 MiB more held"
    );
    drop(blocks);
    drop(mapped);
    let after = in_use().unwrap();
    assert!(
        after + (23 << 20) <= held,
        "{held} bytes in use with the blocks, {after} once they are freed"
    );
}
