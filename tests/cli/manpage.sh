#!/bin/sh
# doc/sfbench.1 documents what `sfbench --help` offers: the same options, each tool that --help
# names, the same environment variables. Everything is read from --help's output, so an option
# added there and not to the man page (or left in the man page once gone) fails here. It also
# names every scenario Makefile.am installs.
: "${SFBENCH:?run through make check}"
tmp="$SF_TEST_OUT/manpage.$$"
mkdir -p "$tmp"
man="$SF_SRCDIR/doc/sfbench.1"
"$SFBENCH" --help >"$tmp/help" 2>&1 || { echo "FAIL: sfbench --help failed"; exit 1; }
# the man page's text without roff's escapes (\- is a dash, \fB... a font change)
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(em/-/g' "$man" >"$tmp/man"

# options: -x and --word where a word starts (not the hyphen inside "one-line")
options() { grep -oE '(^|[[:space:],(])--?[A-Za-z][A-Za-z0-9-]*' "$1" | sed 's/^[[:space:],(]*//' | sort -u; }
options "$tmp/help" >"$tmp/help.opts"
options "$tmp/man" >"$tmp/man.opts"
if [ ! -s "$tmp/help.opts" ]; then echo "FAIL: found no option in sfbench --help"; exit 1; fi
if ! cmp -s "$tmp/help.opts" "$tmp/man.opts"; then
    echo "FAIL: doc/sfbench.1 and sfbench --help list different options (< --help only, > man page only):"
    diff "$tmp/help.opts" "$tmp/man.opts" | grep '^[<>]'
    exit 1
fi

# environment variables
grep -oE 'SFBENCH_[A-Z_]+' "$tmp/help" | sort -u >"$tmp/help.env"
grep -oE 'SFBENCH_[A-Z_]+' "$tmp/man" | sort -u >"$tmp/man.env"
if ! cmp -s "$tmp/help.env" "$tmp/man.env"; then
    echo "FAIL: doc/sfbench.1 and sfbench --help name different environment variables:"
    diff "$tmp/help.env" "$tmp/man.env" | grep '^[<>]'
    exit 1
fi

# each of NAMES... must appear as a word in the man page's section from .SH FROM to .SH TO
named_in() {
    from=$1 to=$2 what=$3
    shift 3
    for name in "$@"; do
        if ! sed -n "/^\\.SH $from/,/^\\.SH $to/p" "$tmp/man" | grep -qw -- "$name"; then
            echo "FAIL: doc/sfbench.1's $from section does not name $what '$name'"
            exit 1
        fi
    done
}

# the tools of the TOOL line ("... result files: compare, report, export")
tools=$(grep 'TOOL' "$tmp/help" | grep ':' | head -1 | sed 's/.*: *//; s/,/ /g')
if [ -z "$tools" ]; then echo "FAIL: found no tool list on sfbench --help's TOOL line"; exit 1; fi
named_in TOOLS "" "sfbench --help's tool" $tools
# the installed scenarios (Makefile.am's SCENARIOS), each named in the DESCRIPTION
scenarios=$(sed -n '/^SCENARIOS *=/,/[^\\]$/p' "$SF_SRCDIR/Makefile.am" | grep -oE 'scenarios/[a-z0-9_]+\.lua' |
    sed 's|^scenarios/||; s|\.lua$||')
if [ -z "$scenarios" ]; then echo "FAIL: found no scenario in Makefile.am's SCENARIOS"; exit 1; fi
named_in DESCRIPTION OPTIONS "the installed scenario" $scenarios
rm -rf "$tmp"
echo "PASS: doc/sfbench.1 lists the options, tools, environment and scenarios of sfbench"
