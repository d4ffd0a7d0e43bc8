/* ztunnel-ctl ca: a local CA for the agent (tests, small clusters) and
 * certificates for the files provider layout. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/file.h"
#include "ztunnel/identity.h"
#include "ztunnel/state.h"

static void ca_usage(FILE *out)
{
	fprintf(out,
		"Usage: ztunnel-ctl ca init --dir DIR [--trust-domain TD] [--days N] [--parent DIR]\n"
		"       ztunnel-ctl ca mint --dir DIR --identity spiffe://TD/ns/NS/sa/SA\n"
		"                           --out DIR [--lifetime SECONDS]\n\n"
		"init creates a self-signed ECDSA P-256 root: DIR/ca-cert.pem, DIR/ca-key.pem\n"
		"(mode 0600) and DIR/root-cert.pem (trust bundle), 3650 days by default.\n"
		"With --parent, an intermediate signed by that CA instead: ca-cert.pem then\n"
		"holds the chain and root-cert.pem the parent's trust bundle.\n"
		"mint issues a workload certificate from DIR's CA into OUT as the files\n"
		"provider reads it: cert-chain.pem, key.pem, root-cert.pem (default 24 h).\n");
}

static int write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return file_write_atomic(path, text, mode);
}

static char *read_text(const char *dir, const char *name)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int r = file_read(path, FILE_MAX_BYTES, &text, &len);
	if (r < 0)
		fprintf(stderr, "error: %s: %s\n", path, strerror(-r));
	return text;
}

static const char *arg(int argc, char **argv, const char *name)
{
	for (int i = 2; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

static struct ca *load_dir_ca(const char *dir)
{
	char *cert = read_text(dir, "ca-cert.pem"), *key = read_text(dir, "ca-key.pem");
	struct ca *ca = NULL;
	char err[256];

	if (cert && key && ca_load(&ca, cert, key, (int64_t)time(NULL), err, sizeof(err)) < 0)
		fprintf(stderr, "error: %s: %s\n", dir, err);
	free(cert);
	if (key)
		memset(key, 0, strlen(key));
	free(key);
	return ca;
}

static int ca_init(int argc, char **argv)
{
	const char *dir = arg(argc, argv, "--dir"), *td = arg(argc, argv, "--trust-domain");
	const char *days = arg(argc, argv, "--days"), *parent_dir = arg(argc, argv, "--parent");
	char *cert = NULL, *key = NULL, *root = NULL;
	struct ca *parent = NULL;

	if (!dir) {
		ca_usage(stderr);
		return 2;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "error: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (parent_dir && (!(parent = load_dir_ca(parent_dir)) || !(root = read_text(parent_dir, "root-cert.pem")))) {
		ca_free(parent);
		return 1;
	}
	int r = parent ? ca_create_intermediate(parent, td ? td : "cluster.local", days ? atoi(days) : 3650,
						&cert, &key)
		       : ca_create_root(td ? td : "cluster.local", days ? atoi(days) : 3650, &cert, &key);
	if (r == 0)
		r = write_file(dir, "ca-key.pem", key, 0600);
	if (r == 0)
		r = write_file(dir, "ca-cert.pem", cert, 0644);
	if (r == 0)
		r = write_file(dir, "root-cert.pem", root ? root : cert, 0644);
	ca_free(parent);
	free(root);
	if (r < 0)
		fprintf(stderr, "error: cannot create the CA in %s: %s\n", dir, strerror(-r));
	else
		printf("created CA in %s (trust domain %s)\n", dir, td ? td : "cluster.local");
	free(cert);
	free(key);
	return r < 0 ? 1 : 0;
}

static int ca_mint_cmd(int argc, char **argv)
{
	const char *dir = arg(argc, argv, "--dir"), *uri = arg(argc, argv, "--identity");
	const char *out = arg(argc, argv, "--out"), *life = arg(argc, argv, "--lifetime");
	struct spiffe_id id;
	struct leaf_cert leaf;
	struct ca *ca = NULL;
	char err[256];
	int status = 1;

	if (!dir || !uri || !out) {
		ca_usage(stderr);
		return 2;
	}
	if (spiffe_parse(uri, &id) < 0) {
		fprintf(stderr, "error: \"%s\" is not spiffe://<td>/ns/<ns>/sa/<sa>\n", uri);
		return 2;
	}
	char *root = read_text(dir, "root-cert.pem");
	if (!root || !(ca = load_dir_ca(dir)))
		goto done;
	if (ca_mint(ca, &id, (int64_t)time(NULL), life ? atoll(life) : 86400, &leaf, err, sizeof(err)) < 0) {
		fprintf(stderr, "error: %s\n", err);
		goto done;
	}
	mkdir(out, 0700);
	if (write_file(out, "key.pem", leaf.key_pem, 0600) < 0 ||
	    write_file(out, "cert-chain.pem", leaf.chain_pem, 0644) < 0 ||
	    write_file(out, "root-cert.pem", root, 0644) < 0) {
		fprintf(stderr, "error: cannot write to %s: %s\n", out, strerror(errno));
	} else {
		printf("%s serial %s valid for %s s\n", uri, leaf.serial, life ? life : "86400");
		status = 0;
	}
	leaf_cert_free(&leaf);
done:
	ca_free(ca);
	free(root);
	return status;
}

int ctl_ca(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "init"))
		return ca_init(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "mint"))
		return ca_mint_cmd(argc, argv);
	ca_usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
	return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
