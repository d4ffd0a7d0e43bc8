#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ztunnel/config.h"

#define ARGV(...) (char *[]){ "ztunnel", __VA_ARGS__ __VA_OPT__(,) NULL }
#define ARGC(v) ((int)(sizeof(v) / sizeof(char *)) - 1)

static char err[512];

static int load(struct zt_config *cfg, int argc, char **argv)
{
	err[0] = '\0';
	return config_load(cfg, argc, argv, err, sizeof(err));
}

static char *write_tmp(const char *content)
{
	static char path[] = "/tmp/zt-config-test-XXXXXX";
	strcpy(path, "/tmp/zt-config-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

static int clear_env(void **state)
{
	(void)state;
	unsetenv("ZTUNNEL_LOG_LEVEL");
	unsetenv("ZTUNNEL_NODE_NAME");
	unsetenv("ZTUNNEL_CONFIG");
	unsetenv("ZTUNNEL_OUTBOUND_PORT");
	return 0;
}

static void defaults_match_istio_ports_and_trust_domain(void **state)
{
	(void)state;
	struct zt_config cfg;
	char **argv = ARGV();
	assert_int_equal(load(&cfg, ARGC(ARGV()), argv), 0);
	assert_int_equal(cfg.outbound_port, 15001);
	assert_int_equal(cfg.inbound_port, 15008);
	assert_int_equal(cfg.inbound_plain_port, 15006);
	assert_string_equal(cfg.trust_domain, "cluster.local");
	assert_string_equal(cfg.root_namespace, "istio-system");
	assert_string_equal(cfg.bpf_pin_dir, "/sys/fs/bpf/ztunnel");
	assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
	assert_null(cfg.node_name);
	assert_false(cfg.help);
	config_free(&cfg);
}

static void flag_beats_env_beats_file(void **state)
{
	(void)state;
	struct zt_config cfg;
	char *path = write_tmp("{\"log-level\":\"warn\",\"node-name\":\"from-file\",\"outbound-port\":16001}");
	setenv("ZTUNNEL_NODE_NAME", "from-env", 1);
	setenv("ZTUNNEL_LOG_LEVEL", "error", 1);
	char *argv[] = { "ztunnel", "--config", path, "--log-level=debug", NULL };
	assert_int_equal(load(&cfg, 4, argv), 0);
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);       /* flag */
	assert_string_equal(cfg.node_name, "from-env");         /* env over file */
	assert_int_equal(cfg.outbound_port, 16001);             /* file over default */
	assert_string_equal(cfg.config_file, path);
	config_free(&cfg);
	unlink(path);
}

static void config_file_from_env_is_read(void **state)
{
	(void)state;
	struct zt_config cfg;
	char *path = write_tmp("{\"snapshot\":\"/x/snap.json\",\"worker-threads\":3}");
	setenv("ZTUNNEL_CONFIG", path, 1);
	assert_int_equal(load(&cfg, 1, ARGV()), 0);
	assert_string_equal(cfg.snapshot, "/x/snap.json");
	assert_int_equal(cfg.worker_threads, 3);
	config_free(&cfg);
	unlink(path);
}

static void out_of_range_port_is_rejected_with_its_origin(void **state)
{
	(void)state;
	struct zt_config cfg;
	setenv("ZTUNNEL_OUTBOUND_PORT", "70000", 1);
	assert_int_equal(load(&cfg, 1, ARGV()), -EINVAL);
	assert_non_null(strstr(err, "ZTUNNEL_OUTBOUND_PORT"));
	assert_non_null(strstr(err, "outbound-port"));
	config_free(&cfg);
}

static void bad_enum_lists_the_choices(void **state)
{
	(void)state;
	struct zt_config cfg;
	char *argv[] = { "ztunnel", "--log-format", "xml", NULL };
	assert_int_equal(load(&cfg, 3, argv), -EINVAL);
	assert_non_null(strstr(err, "text"));
	assert_non_null(strstr(err, "\"xml\""));
	config_free(&cfg);
}

static void unknown_flag_and_stray_argument_are_errors(void **state)
{
	(void)state;
	struct zt_config cfg;
	char *argv1[] = { "ztunnel", "--no-such-flag", NULL };
	assert_int_equal(load(&cfg, 2, argv1), -EINVAL);
	assert_non_null(strstr(err, "--no-such-flag"));
	config_free(&cfg);
	char *argv2[] = { "ztunnel", "stray", NULL };
	assert_int_equal(load(&cfg, 2, argv2), -EINVAL);
	assert_non_null(strstr(err, "stray"));
	config_free(&cfg);
	char *argv3[] = { "ztunnel", "--snapshot", NULL };
	assert_int_equal(load(&cfg, 2, argv3), -EINVAL);
	config_free(&cfg);
}

static void a_boolean_alone_is_true_and_takes_a_literal(void **state)
{
	(void)state;
	struct zt_config cfg;
	char *argv1[] = { "ztunnel", "--kube", "--kube-server", "https://10.0.0.1:6443", "--capture", "false", NULL };
	assert_int_equal(load(&cfg, 6, argv1), 0);
	assert_true(cfg.kube);
	assert_false(cfg.capture);
	assert_string_equal(cfg.kube_server, "https://10.0.0.1:6443");
	config_free(&cfg);
	char *argv2[] = { "ztunnel", "--capture=false", "--kube", "0", NULL };
	assert_int_equal(load(&cfg, 4, argv2), 0);
	assert_false(cfg.capture);
	assert_false(cfg.kube);
	config_free(&cfg);
	char *argv3[] = { "ztunnel", "--capture=maybe", NULL };
	assert_int_equal(load(&cfg, 2, argv3), -EINVAL);
	config_free(&cfg);
}

static void missing_or_invalid_config_file_is_an_error(void **state)
{
	(void)state;
	struct zt_config cfg;
	char *argv[] = { "ztunnel", "--config", "/nonexistent/zt.json", NULL };
	assert_int_equal(load(&cfg, 3, argv), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/zt.json"));
	config_free(&cfg);

	char *path = write_tmp("{\"log-level\": ");
	char *argv2[] = { "ztunnel", "--config", path, NULL };
	assert_int_equal(load(&cfg, 3, argv2), -EINVAL);
	assert_non_null(strstr(err, "not a JSON object"));
	config_free(&cfg);
	unlink(path);

	path = write_tmp("{\"log-levle\": \"info\"}");
	char *argv3[] = { "ztunnel", "--config", path, NULL };
	assert_int_equal(load(&cfg, 3, argv3), -EINVAL);
	assert_non_null(strstr(err, "unknown setting \"log-levle\""));
	config_free(&cfg);
	unlink(path);
}

static void help_flag_is_set_and_help_lists_env_names(void **state)
{
	(void)state;
	struct zt_config cfg;
	char *argv[] = { "ztunnel", "-h", NULL };
	assert_int_equal(load(&cfg, 2, argv), 0);
	assert_true(cfg.help);
	config_free(&cfg);

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	config_print_help(f, "ztunnel");
	fclose(f);
	assert_non_null(strstr(text, "--bpf-pin-dir VALUE"));
	assert_non_null(strstr(text, "ZTUNNEL_BPF_PIN_DIR"));
	assert_non_null(strstr(text, "[default: 15008]"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(defaults_match_istio_ports_and_trust_domain, clear_env),
		cmocka_unit_test_setup(flag_beats_env_beats_file, clear_env),
		cmocka_unit_test_setup(config_file_from_env_is_read, clear_env),
		cmocka_unit_test_setup(out_of_range_port_is_rejected_with_its_origin, clear_env),
		cmocka_unit_test_setup(bad_enum_lists_the_choices, clear_env),
		cmocka_unit_test_setup(unknown_flag_and_stray_argument_are_errors, clear_env),
		cmocka_unit_test_setup(a_boolean_alone_is_true_and_takes_a_literal, clear_env),
		cmocka_unit_test_setup(missing_or_invalid_config_file_is_an_error, clear_env),
		cmocka_unit_test_setup(help_flag_is_set_and_help_lists_env_names, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
