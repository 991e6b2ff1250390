/*
 * top: socketd-cli top, a live view of a server's rates from its
 * Prometheus endpoint (the admin listener's GET /metrics).
 */
#ifndef SOCKETD_TOP_H
#define SOCKETD_TOP_H

#include <stddef.h>

/* One /metrics sample: "name{labels}" -> value, parsed. */
struct top_sample {
	char **keys;
	double *vals;
	size_t n, cap;
};

/* Parse Prometheus text into s (appends); 0 or -1 (no memory). */
int top_parse(struct top_sample *s, const char *text, size_t len);
void top_sample_free(struct top_sample *s);
/* The value of key ("name" or "name{labels}" as written), or -1. */
double top_get(const struct top_sample *s, const char *key);
/* Sum of every series of name whose labels contain match (may be NULL). */
double top_sum(const struct top_sample *s, const char *name, const char *match);
/*
 * The q-quantile (0.99) of what a histogram (name_bucket series, summed
 * over its other labels) observed between a and b, as the upper bound of
 * the bucket it falls in; -1 when nothing was observed.
 */
double top_quantile(const struct top_sample *a, const struct top_sample *b,
    const char *name, double q);

/* socketd-cli top [OPTION...]: argv[0] is "top". */
int top_main(const char *host, int timeout_ms, int argc, char **argv);

#endif /* SOCKETD_TOP_H */
