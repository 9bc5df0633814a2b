/* The verbs of the `motscale` program. Each takes the arguments after the verb,
 * handles --help itself, and returns the process exit status. */
#ifndef MOTSCALE_CLI_H
#define MOTSCALE_CLI_H

int cmd_train(int argc, char **argv);   /* src/cli/cmd_train.c */
int cmd_flops(int argc, char **argv);   /* src/cli/cmd_flops.c */
int cmd_data(int argc, char **argv);    /* src/cli/cmd_data.c */
int cmd_compare(int argc, char **argv); /* src/cli/cmd_compare.c */
int cmd_report(int argc, char **argv);  /* src/cli/cmd_report.c */
int cmd_sweep(int argc, char **argv);   /* src/cli/cmd_sweep.c */
int cmd_steptime(int argc, char **argv); /* src/cli/cmd_steptime.c */
int cmd_probenet(int argc, char **argv); /* src/cli/cmd_probenet.c */
int cmd_project(int argc, char **argv);  /* src/cli/cmd_project.c */

/* True when argv holds --help or -h; the verbs print their usage then. */
int cli_wants_help(int argc, char **argv);

#endif
