// Command oracle answers questions about module paths and versions using the
// go command's own golang.org/x/mod and go/version packages, so that the
// modzip test suite can compare its answers with Go's.
//
// Protocol: each input line is a function name followed by tab-separated
// arguments, every argument hex-encoded (so any byte can be passed). For each
// line one output line is written: the hex encoding of the answer text.
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"go/version"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

func result(err error) string {
	if err != nil {
		return "err"
	}
	return "ok"
}

func valueOrErr(s string, err error) (string, error) {
	if err != nil {
		return "err", nil
	}
	return "ok " + s, nil
}

func sign(n int) string {
	switch {
	case n < 0:
		return "-1"
	case n > 0:
		return "1"
	}
	return "0"
}

// pathMajorPrefix turns the panic on malformed input into "".
func pathMajorPrefix(s string) (out string) {
	defer func() {
		if recover() != nil {
			out = ""
		}
	}()
	return module.PathMajorPrefix(s)
}

func answer(fn string, a []string) (string, error) {
	arg := func(i int) string {
		if i < len(a) {
			return a[i]
		}
		return ""
	}
	switch fn {
	case "CheckPath":
		return result(module.CheckPath(arg(0))), nil
	case "CheckImportPath":
		return result(module.CheckImportPath(arg(0))), nil
	case "CheckFilePath":
		return result(module.CheckFilePath(arg(0))), nil
	case "Check":
		return result(module.Check(arg(0), arg(1))), nil
	case "EscapePath":
		return valueOrErr(module.EscapePath(arg(0)))
	case "UnescapePath":
		return valueOrErr(module.UnescapePath(arg(0)))
	case "EscapeVersion":
		return valueOrErr(module.EscapeVersion(arg(0)))
	case "UnescapeVersion":
		return valueOrErr(module.UnescapeVersion(arg(0)))
	case "SplitPathVersion":
		prefix, major, ok := module.SplitPathVersion(arg(0))
		if !ok {
			return "notok", nil
		}
		return "ok " + prefix + "|" + major, nil
	case "CheckPathMajor":
		return result(module.CheckPathMajor(arg(0), arg(1))), nil
	case "MatchPathMajor":
		return strconv.FormatBool(module.MatchPathMajor(arg(0), arg(1))), nil
	case "PathMajorPrefix":
		return pathMajorPrefix(arg(0)), nil
	case "CanonicalVersion":
		return module.CanonicalVersion(arg(0)), nil
	case "MatchPrefixPatterns":
		return strconv.FormatBool(module.MatchPrefixPatterns(arg(0), arg(1))), nil
	case "IsPseudoVersion":
		return strconv.FormatBool(module.IsPseudoVersion(arg(0))), nil
	case "IsZeroPseudoVersion":
		return strconv.FormatBool(module.IsZeroPseudoVersion(arg(0))), nil
	case "PseudoVersionBase":
		return valueOrErr(module.PseudoVersionBase(arg(0)))
	case "PseudoVersionRev":
		return valueOrErr(module.PseudoVersionRev(arg(0)))
	case "PseudoVersionTime":
		t, err := module.PseudoVersionTime(arg(0))
		return valueOrErr(t.UTC().Format(module.PseudoVersionTimestampFormat), err)
	case "PseudoVersion":
		secs, err := strconv.ParseInt(arg(2), 10, 64)
		if err != nil {
			return "", err
		}
		return module.PseudoVersion(arg(0), arg(1), time.Unix(secs, 0), arg(3)), nil
	case "ZeroPseudoVersion":
		return module.ZeroPseudoVersion(arg(0)), nil
	case "semver.IsValid":
		return strconv.FormatBool(semver.IsValid(arg(0))), nil
	case "semver.Canonical":
		return semver.Canonical(arg(0)), nil
	case "semver.Compare":
		return sign(semver.Compare(arg(0), arg(1))), nil
	case "semver.Major":
		return semver.Major(arg(0)), nil
	case "semver.MajorMinor":
		return semver.MajorMinor(arg(0)), nil
	case "semver.Prerelease":
		return semver.Prerelease(arg(0)), nil
	case "semver.Build":
		return semver.Build(arg(0)), nil
	case "semver.Max":
		return semver.Max(arg(0), arg(1)), nil
	case "version.IsValid":
		return strconv.FormatBool(version.IsValid(arg(0))), nil
	case "version.Lang":
		return version.Lang(arg(0)), nil
	case "version.Compare":
		return sign(version.Compare(arg(0), arg(1))), nil
	}
	return "", fmt.Errorf("unknown function %q", fn)
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		fields := strings.Split(in.Text(), "\t")
		args := make([]string, 0, len(fields)-1)
		for _, f := range fields[1:] {
			b, err := hex.DecodeString(f)
			if err != nil {
				fmt.Fprintf(os.Stderr, "oracle: bad hex argument %q\n", f)
				os.Exit(2)
			}
			args = append(args, string(b))
		}
		text, err := answer(fields[0], args)
		if err != nil {
			fmt.Fprintf(os.Stderr, "oracle: %v\n", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, hex.EncodeToString([]byte(text)))
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "oracle: reading input: %v\n", err)
		os.Exit(2)
	}
}
