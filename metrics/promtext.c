/*
 * The Prometheus text format (promtext.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

const uint64_t pt_bounds_ns[PT_NBOUNDS] = {
    10000,
    25000,
    50000,
    100000,
    250000,
    500000,
    1000000,
    2500000,
    5000000,
    10000000,
    25000000,
    100000000,
    1000000000,
};

const char *const pt_bounds_le[PT_NBOUNDS] = {
    "0.00001",
    "0.000025",
    "0.00005",
    "0.0001",
    "0.00025",
    "0.0005",
    "0.001",
    "0.0025",
    "0.005",
    "0.01",
    "0.025",
    "0.1",
    "1",
};

void
pt_init(struct pt_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
pt_free(struct pt_buf *b)
{
	free(b->p);
	pt_init(b);
}

static int
reserve(struct pt_buf *b, size_t n)
{
	size_t ncap;
	char *np;

	if (b->oom)
		return -1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 4096;
	while (ncap < b->len + n + 1)
		ncap *= 2;
	if ((np = realloc(b->p, ncap)) == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

void
pt_printf(struct pt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
pt_family(
    struct pt_buf *b, const char *name, const char *type, const char *help)
{
	const char *p;

	pt_printf(b, "# HELP %s ", name);
	for (p = help; *p != '\0'; p++) {
		if (*p == '\\')
			pt_printf(b, "\\\\");
		else if (*p == '\n')
			pt_printf(b, "\\n");
		else
			pt_printf(b, "%c", *p);
	}
	pt_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void
series(struct pt_buf *b, const char *name, const char *labels)
{
	if (labels != NULL && labels[0] != '\0')
		pt_printf(b, "%s{%s} ", name, labels);
	else
		pt_printf(b, "%s ", name);
}

void
pt_u64(struct pt_buf *b, const char *name, const char *labels, uint64_t v)
{
	series(b, name, labels);
	pt_printf(b, "%llu\n", (unsigned long long)v);
}

void
pt_nanos(struct pt_buf *b, const char *name, const char *labels, uint64_t ns)
{
	series(b, name, labels);
	pt_printf(b, "%llu.%09llu\n", (unsigned long long)(ns / 1000000000u),
	    (unsigned long long)(ns % 1000000000u));
}

int
pt_label(char *dst, size_t cap, const char *key, const char *value)
{
	size_t n = strlen(dst), start = n;
	const char *p;

#define PUT(ch)                                                                \
	do {                                                                   \
		if (n + 1 >= cap)                                              \
			goto full;                                             \
		dst[n++] = (ch);                                               \
	} while (0)
	if (n > 0)
		PUT(',');
	for (p = key; *p != '\0'; p++)
		PUT(*p);
	PUT('=');
	PUT('"');
	for (p = value; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"') {
			PUT('\\');
			PUT(*p);
		} else if (*p == '\n') {
			PUT('\\');
			PUT('n');
		} else {
			PUT(*p);
		}
	}
	PUT('"');
#undef PUT
	dst[n] = '\0';
	return 0;
full:
	dst[start] = '\0';
	return -1;
}

void
pt_histogram(struct pt_buf *b, const char *name, const char *labels,
    const uint64_t counts[PT_NBOUNDS + 1], uint64_t sum_ns)
{
	uint64_t cum = 0;
	unsigned i;
	const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";

	if (labels == NULL)
		labels = "";
	for (i = 0; i <= PT_NBOUNDS; i++) {
		cum += counts[i];
		pt_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels,
		    sep, i < PT_NBOUNDS ? pt_bounds_le[i] : "+Inf",
		    (unsigned long long)cum);
	}
	pt_printf(b, "%s_sum%s%s%s %llu.%09llu\n", name, labels[0] ? "{" : "",
	    labels, labels[0] ? "}" : "",
	    (unsigned long long)(sum_ns / 1000000000u),
	    (unsigned long long)(sum_ns % 1000000000u));
	pt_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "",
	    labels, labels[0] ? "}" : "", (unsigned long long)cum);
}
