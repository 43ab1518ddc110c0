# Summaries of a `perf record -g` profile, shared by the benchmark harnesses (sourced, not run).

demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else swift demangle --simplified; fi; }

perf_top() { # PERF_DATA [perf report options...]: the report's lines, Swift names demangled
    local data=$1
    shift
    perf report -i "$data" --stdio -g none "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' |
        sed 's/[ -]*$//; s/   */  /g' | demangle || true
}

perf_summaries() { # PERF_DATA OUT_DIR SELF_LIMIT_PERCENT: profile-dso, profile (self time),
    # profile-user (no kernel symbols) and profile-inclusive (with children) .txt files in OUT_DIR
    perf_top "$1" --no-children --sort dso --percent-limit 0.5 >"$2/profile-dso.txt"
    perf_top "$1" --no-children --sort dso,symbol --percent-limit "$3" >"$2/profile.txt"
    perf_top "$1" --no-children --sort dso,symbol --percent-limit 0.1 | grep -v '\[k\]' >"$2/profile-user.txt"
    perf_top "$1" --children --sort symbol --percent-limit 1 | grep -v '\[k\]' >"$2/profile-inclusive.txt"
}

print_profile() { # RES_DIR HEADLINE ALL_LINES USER_LINES WIDTH: the summaries as markdown
    echo
    echo "$2; self time by shared object:"
    echo '```'
    head -n 8 "$1/profile-dso.txt"
    echo '```'
    echo "Top symbols, self time (all, then user space only):"
    echo '```'
    head -n "$3" "$1/profile.txt" | cut -c1-"$5"
    echo '...'
    head -n "$4" "$1/profile-user.txt" | cut -c1-"$5"
    echo '```'
    echo "(Inclusive user-space times, from the call graphs: results/profile-inclusive.txt in the --out directory.)"
}
