/*
 * The floor of a no-op build: a process that does nothing but `stat` each
 * file named in LIST (one path a line, relative to the current folder),
 * on one thread, and exits. A no-op `pressroom build` stats at least the
 * same files (its articles), so it cannot take less than this.
 *
 *     floor LIST
 *
 * Exits 1 when a file cannot be stat'ed (the list does not match the
 * site), 2 when LIST cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: floor LIST\n");
        return 2;
    }
    FILE *list = fopen(argv[1], "r");
    if (!list) {
        perror(argv[1]);
        return 2;
    }
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    struct stat st;
    while ((len = getline(&line, &capacity, list)) > 0) {
        if (line[len - 1] == '\n') line[len - 1] = '\0';
        if (stat(line, &st) != 0) {
            perror(line);
            return 1;
        }
    }
    return 0;
}
