// Command doccmds runs the commands that README.md and BENCHMARKS.md tell users to
// run, in short versions, so that a wrong one fails CI (`make test-docs`).
//
// A shell block takes part when the line before its fence is
//
//	<!-- doc-test: GROUP -->
//
// The blocks of a group, README.md's first, run in order in one bash process (so
// a variable one block sets reaches the next), in a scratch copy of the repository
// (its data/ and bin/ are the copy's own). Each command is what the document says,
// with these changes, all printed before it runs:
//
//   - a command that runs until stopped (make run, make run-split, make
//     run-cluster) starts in the background, and the next command waits until it
//     says it is ready; a second start of the same command in the group is skipped;
//   - make test is skipped (CI runs it on its own), and so is a load run that starts
//     its own shop (make loadtest, loadgen without -target) already run by an
//     earlier group;
//   - a command whose comment names a gRPC error (NotFound, InvalidArgument,
//     Unauthenticated, PermissionDenied) must fail;
//   - loads are shortened: -orders to 40, -users to at most 8, -chaos-rounds to 1,
//     -chaos-every to 2s, a flash sale to 40 buyers for 5 units, make loadtest to the
//     same short chaos run.
//
// At the end of a group everything it started is stopped. The fixed ports of the
// documented commands (4223, 8080, 9400-9406; split: 4233-4235, 8090, 9500-9506)
// must be free.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	root := flag.String("root", ".", "repository root")
	only := flag.String("group", "", "run only this group")
	list := flag.Bool("list", false, "print the script of each group and run nothing")
	timeout := flag.Duration("timeout", 15*time.Minute, "bound for one group")
	flag.Parse()
	if err := run(*root, *only, *list, *timeout, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "doccmds:", err)
		os.Exit(1)
	}
}

// block is one tagged shell block.
type block struct {
	file  string
	line  int // of the fence
	group string
	text  string
}

var tag = regexp.MustCompile(`^<!--\s*doc-test:\s*([\w-]+)\s*-->$`)

// blocks returns the tagged shell blocks of files, in file order.
func blocks(root string, files ...string) ([]block, error) {
	var out []block
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		lines := strings.Split(string(data), "\n")
		for i := 1; i < len(lines); i++ {
			m := tag.FindStringSubmatch(strings.TrimSpace(lines[i-1]))
			if m == nil {
				continue
			}
			if fence := strings.TrimSpace(lines[i]); fence != "```sh" && fence != "```bash" {
				return nil, fmt.Errorf("%s:%d: doc-test tag before %q, want a ```sh block", f, i, fence)
			}
			j := i + 1
			for j < len(lines) && strings.TrimSpace(lines[j]) != "```" {
				j++
			}
			if j == len(lines) {
				return nil, fmt.Errorf("%s:%d: shell block never closed", f, i+1)
			}
			out = append(out, block{file: f, line: i + 1, group: m[1], text: strings.Join(lines[i+1:j], "\n")})
			i = j
		}
	}
	return out, nil
}

// commands splits a block into commands: a command goes on over a line that ends
// in a backslash or inside quotes or $(...), and comment-only lines are dropped.
func commands(text string) []string {
	var out []string
	var cur strings.Builder
	var quote rune // the open quote, 0 outside quotes
	depth := 0     // open $( and ( outside quotes
	for _, l := range strings.Split(text, "\n") {
		if cur.Len() == 0 && (strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#")) {
			continue
		}
		escaped := false
		for i, c := range l {
			switch {
			case escaped:
				escaped = false
			case c == '\\' && quote != '\'':
				escaped = true
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '#' && (i == 0 || l[i-1] == ' '):
				goto lineEnd // the rest of the line is a comment
			case c == '(':
				depth++
			case c == ')':
				depth--
			}
		}
	lineEnd:
		cur.WriteString(l)
		if quote != 0 || depth > 0 || strings.HasSuffix(l, `\`) {
			cur.WriteString("\n")
			continue
		}
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// splitComment returns a command line without its trailing comment, and the comment.
// A # inside quotes or $(...) is not a comment start; the documents' commands keep
// their comments after a space.
func splitComment(cmd string) (code, comment string) {
	if i := strings.LastIndex(cmd, " #"); i >= 0 && !strings.ContainsAny(cmd[i:], `"'`) {
		return strings.TrimRight(cmd[:i], " "), strings.TrimSpace(cmd[i+2:])
	}
	return cmd, ""
}

// quote quotes s for bash, as one word that expands nothing.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// background commands run until stopped; the value is what their output says once
// they are ready.
var background = map[string]string{
	"make run":         "shopd: ready",
	"make run-split":   "run-split: running",
	"make run-cluster": "run-split: running",
}

var grpcErrors = regexp.MustCompile(`\b(NotFound|InvalidArgument|Unauthenticated|PermissionDenied)\b`)

var shorten = []struct {
	re   *regexp.Regexp
	repl func(m []string) string
}{
	{regexp.MustCompile(`-orders \d+`), func([]string) string { return "-orders 40" }},
	{regexp.MustCompile(`-users (\d+)`), func(m []string) string {
		n, _ := strconv.Atoi(m[1])
		return "-users " + strconv.Itoa(min(n, 8))
	}},
	{regexp.MustCompile(`-chaos-rounds \d+`), func([]string) string { return "-chaos-rounds 1" }},
	{regexp.MustCompile(`-chaos-every \S+`), func([]string) string { return "-chaos-every 2s" }},
}

// short returns the short version of a command.
func short(code string) string {
	for _, s := range shorten {
		code = s.re.ReplaceAllStringFunc(code, func(m string) string { return s.repl(s.re.FindStringSubmatch(m)) })
	}
	if strings.Contains(code, "-scenario flash-sale") && !strings.Contains(code, "-buyers") {
		code += " -buyers 40 -units 5"
	}
	if strings.TrimSpace(code) == "make loadtest" {
		code = `make loadtest LOADGEN_FLAGS="-scenario chaos -orders 40 -users 8 -chaos-rounds 1 -chaos-every 1s"`
	}
	return code
}

// selfContained reports whether a command runs everything it needs itself (an
// in-process load run), so that running it once is enough for every group.
func selfContained(code string) bool {
	return strings.HasPrefix(code, "make loadtest") ||
		(strings.HasPrefix(code, "go run ./cmd/loadgen") && !strings.Contains(code, "-target"))
}

// script turns a group's blocks into one bash script; ran holds the self-contained
// commands earlier groups ran, which it skips.
func script(bs []block, ran map[string]bool) string {
	var b strings.Builder
	b.WriteString(`set -euo pipefail
__logs=$(mktemp -d)
__n=0
__wait() { # __wait LOG TEXT: until LOG says TEXT (bounded)
	for _ in $(seq 1 1800); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "doc-test: not ready after 180s: $1 never said \"$2\"" >&2; tail -20 "$1" >&2; return 1
}
__run() { printf '\n+ %s\n' "$1" >&2; }
`)
	started := map[string]bool{}
	for _, bl := range bs {
		fmt.Fprintf(&b, "\n# %s:%d\n", bl.file, bl.line)
		for _, cmd := range commands(bl.text) {
			code, comment := splitComment(cmd)
			trimmed := strings.TrimSpace(code)
			switch {
			case trimmed == "make test":
				fmt.Fprintf(&b, "__run %s  # skipped: CI runs it\n", quote("make test"))
			case background[trimmed] != "":
				if started[trimmed] {
					fmt.Fprintf(&b, "__run %s  # already running\n", quote(trimmed))
					continue
				}
				started[trimmed] = true
				fmt.Fprintf(&b, "__run %s\n__n=$((__n+1)); %s >\"$__logs/$__n\" 2>&1 &\n__wait \"$__logs/$__n\" %s\n", quote(trimmed+" &"), trimmed, quote(background[trimmed]))
			case selfContained(trimmed) && ran[short(trimmed)]:
				fmt.Fprintf(&b, "__run %s  # ran in an earlier group\n", quote(short(trimmed)))
			default:
				s := short(code)
				if selfContained(trimmed) {
					ran[s] = true
				}
				fmt.Fprintf(&b, "__run %s\n", quote(s))
				if grpcErrors.MatchString(comment) {
					fmt.Fprintf(&b, "if %s; then echo 'doc-test: expected to fail (%s)' >&2; exit 1; fi\n", s, grpcErrors.FindString(comment))
				} else {
					b.WriteString(s + "\n")
				}
			}
		}
	}
	return b.String()
}

func run(root, only string, list bool, timeout time.Duration, out io.Writer) error {
	bs, err := blocks(root, "README.md", "BENCHMARKS.md")
	if err != nil {
		return err
	}
	var groups []string
	byGroup := map[string][]block{}
	for _, b := range bs {
		if !slices.Contains(groups, b.group) {
			groups = append(groups, b.group)
		}
		byGroup[b.group] = append(byGroup[b.group], b)
	}
	if only != "" {
		if byGroup[only] == nil {
			return fmt.Errorf("no doc-test group %q (groups: %s)", only, strings.Join(groups, ", "))
		}
		groups = []string{only}
	}
	if len(groups) == 0 {
		return errors.New("no doc-test blocks in README.md or BENCHMARKS.md")
	}
	ran := map[string]bool{}
	for _, g := range groups {
		s := script(byGroup[g], ran)
		if list {
			fmt.Fprintf(out, "### group %s\n%s\n", g, s)
			continue
		}
		fmt.Fprintf(out, "=== doc-test group %s (%d blocks)\n", g, len(byGroup[g]))
		start := time.Now()
		if err := runGroup(root, s, timeout, out); err != nil {
			return fmt.Errorf("group %s: %w", g, err)
		}
		fmt.Fprintf(out, "=== doc-test group %s: ok in %v\n", g, time.Since(start).Round(time.Second))
	}
	return nil
}

// runGroup runs script with bash in a scratch copy of root and then stops whatever
// it started: run-split's processes (if it started them) and every process of its
// process group.
func runGroup(root, script string, timeout time.Duration, out io.Writer) error {
	dir, err := os.MkdirTemp("", "doc-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := copyTree(root, dir); err != nil {
		return fmt.Errorf("copy the repository: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	// Each script keeps its state under bin/: present means it started something.
	for state, stop := range map[string]string{"bin/split": "scripts/run-split.sh", "bin/shopd": "scripts/run-shopd.sh"} {
		if _, serr := os.Stat(filepath.Join(dir, state)); serr == nil {
			c := exec.Command(stop, "stop")
			c.Dir = dir
			_ = c.Run()
		}
	}
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		time.Sleep(time.Second)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("not done after %v", timeout)
	}
	return err
}

// copyTree copies the repository's files into dst, leaving out .git and what its
// commands make (bin, data).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == ".git" || rel == "bin" || rel == "data" || rel == "tmp" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(path, filepath.Join(dst, rel), info.Mode().Perm())
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	if _, err := io.Copy(w, in); err != nil {
		out.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
