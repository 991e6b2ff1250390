/*
 * pscli: socketd-cli's pub/sub commands (subscribe, publish, chat) and
 * bench --op publish.  Each returns socketd-cli's exit status (0 ok, 1 the
 * server answered an error, 2 usage, 3 connection failure).
 */
#ifndef SOCKETD_PSCLI_H
#define SOCKETD_PSCLI_H

#include "sdclient.h"

struct pscli_conn {
	const char *host;
	const char *port;
	int timeout_ms;
	int tls;
	const struct sdc_tls_opts *tls_opts;
};

/* subscribe [--raw] [--count N] FILTER... */
int pscli_subscribe(const struct pscli_conn *pc, int argc, char **argv);
/* publish TOPIC [DATA | -] */
int pscli_publish(const struct pscli_conn *pc, int argc, char **argv);
/* chat ROOM [--name NAME] */
int pscli_chat(const struct pscli_conn *pc, int argc, char **argv);
/* bench --op publish [--publishers N] ...; argv[0] is "bench". */
int pscli_bench(const struct pscli_conn *pc, int argc, char **argv);
/* Whether bench's arguments ask for --op publish. */
int pscli_is_bench(int argc, char **argv);

#endif /* SOCKETD_PSCLI_H */
