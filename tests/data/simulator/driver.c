/*
 * Harness around the unmodified simulate_zsmalloc.c (github.com/sergey-senozhatsky/
 * simulate-zsmalloc, not part of this repository): build_pool() with a chosen class
 * delta and chain rule, then its print_pool_stats() and print_summary().
 *
 * make_reference.py writes a copy of the simulator with PAGE_SIZE and
 * CONFIG_ZSMALLOC_CHAIN_SIZE replaced as variant.c, and compiles this file against it:
 *     cc -O0 -w -I<dir of variant.c> -o sim driver.c
 *     ./sim DELTA RULE        (RULE 0: least-waste, the kernel's; 1: waste-threshold)
 */
#define main simulator_main
#include "variant.c"
#undef main

int main(int argc, char **argv)
{
	int delta = argc > 1 ? atoi(argv[1]) : 16;
	int rule = argc > 2 ? atoi(argv[2]) : 0;
	int (*chain)(int) = rule ? calculate_zspage_chain_size_new : calculate_zspage_chain_size_old;
	int n = DIV_ROUND_UP(ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE, delta) + 1;
	struct size_class **pool;

	printf("PAGE_SIZE: %d, CHAIN_SIZE: %d\n", PAGE_SIZE, CONFIG_ZSMALLOC_CHAIN_SIZE);
	pool = build_pool(delta, chain);
	print_pool_stats(rule ? "waste-threshold" : "least-waste", pool, n);
	print_summary("SUMMARY", pool, n, delta);
	return 0;
}
