#!/usr/bin/env bash
# Tests/deploy/verify_units.sh — checks for deploy/: the systemd units (static checks, and
# `systemd-analyze verify` / `security --offline` when available), the example env files, and
# deploy/install.sh run into a temporary --prefix with a fake release folder.
#
# Needs no running systemd, writes nothing outside a temporary folder, needs no Swift build.
# Last line: `deploy: N passed, M failed`; exit 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
deploy="$repo/deploy"
units_dir="$deploy/systemd"
install_sh="$deploy/install.sh"

services=(registration reports consult followup screening)
processes=("${services[@]}" edge)
binaries=("${processes[@]}" yunzhen)

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   - %s\n' "$*"; }
not_ok() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# has_line FILE LINE: FILE has LINE exactly (whole line).
has_line() { grep -qxF -- "$2" "$1"; }
lacks_setting() { ! grep -qE "^[[:space:]]*$2[[:space:]]*=" "$1"; }

# ---------------------------------------------------------------------------------------------
# Static checks of the units.

common_lines=(
    "Type=notify" "NotifyAccess=main" "User=yunzhen" "Group=yunzhen"
    "EnvironmentFile=/etc/yunzhen/yunzhen.env"
    "Restart=on-failure" "RestartSec=2" "TimeoutStopSec=30" "KillSignal=SIGTERM"
    "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "PrivateDevices=yes"
    "ProtectKernelTunables=yes" "ProtectKernelModules=yes" "ProtectControlGroups=yes"
    "RestrictNamespaces=yes" "LockPersonality=yes" "RestrictRealtime=yes" "RestrictSUIDSGID=yes"
    "SystemCallArchitectures=native" "CapabilityBoundingSet="
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "UMask=0027"
    "PartOf=yunzhen.target" "WantedBy=yunzhen.target"
)

for p in "${processes[@]}"; do
    unit="$units_dir/yunzhen-$p.service"
    if [[ ! -f $unit ]]; then
        not_ok "unit yunzhen-$p.service exists"
        continue
    fi
    missing=()
    for line in "${common_lines[@]}" "ExecStart=/opt/yunzhen/bin/$p" "EnvironmentFile=-/etc/yunzhen/$p.env"; do
        has_line "$unit" "$line" || missing+=("$line")
    done
    if [[ $p == edge ]]; then
        for s in "${services[@]}"; do
            grep -qE "^After=.*\byunzhen-$s\.service\b" "$unit" || missing+=("After=yunzhen-$s.service")
            grep -qE "^Wants=.*\byunzhen-$s\.service\b" "$unit" || missing+=("Wants=yunzhen-$s.service")
        done
        has_line "$unit" "Environment=YUNZHEN_EDGE_PUBLIC_DIR=/opt/yunzhen/share/public" ||
            missing+=("Environment=YUNZHEN_EDGE_PUBLIC_DIR=/opt/yunzhen/share/public")
        lacks_setting "$unit" StateDirectory || missing+=("(no StateDirectory=)")
    else
        for line in "Environment=YUNZHEN_DATA=/var/lib/yunzhen" "StateDirectory=yunzhen yunzhen/queue yunzhen/$p" \
            "StateDirectoryMode=0750" "Before=yunzhen-edge.service"; do
            has_line "$unit" "$line" || missing+=("$line")
        done
    fi
    lacks_setting "$unit" MemoryDenyWriteExecute || missing+=("(no MemoryDenyWriteExecute=)")
    if ((${#missing[@]} == 0)); then
        ok "yunzhen-$p.service has the required settings"
    else
        not_ok "yunzhen-$p.service is missing: ${missing[*]}"
    fi
done

target="$units_dir/yunzhen.target"
check "yunzhen.target exists and is WantedBy=multi-user.target" has_line "$target" "WantedBy=multi-user.target"
target_missing=()
for p in "${processes[@]}"; do
    grep -qE "^Wants=.*\byunzhen-$p\.service\b" "$target" || target_missing+=("Wants=yunzhen-$p.service")
    grep -qE "^Also=.*\byunzhen-$p\.service\b" "$target" || target_missing+=("Also=yunzhen-$p.service")
done
if ((${#target_missing[@]} == 0)); then ok "yunzhen.target pulls in and enables the six units"; else
    not_ok "yunzhen.target is missing: ${target_missing[*]}"; fi

# ---------------------------------------------------------------------------------------------
# Example env files: only known variables, each commented, key placeholders.

known_vars=" YUNZHEN_DATA YUNZHEN_HOST YUNZHEN_PORT YUNZHEN_LOG_LEVEL YUNZHEN_LOG_FORMAT
 YUNZHEN_UPSTREAM_REGISTRATION YUNZHEN_UPSTREAM_REPORTS YUNZHEN_UPSTREAM_CONSULT YUNZHEN_UPSTREAM_FOLLOWUP
 YUNZHEN_UPSTREAM_SCREENING YUNZHEN_EDGE_PUBLIC_DIR YUNZHEN_EDGE_BODY_LIMIT YUNZHEN_UPSTREAM_CONNECT_TIMEOUT_MS
 YUNZHEN_UPSTREAM_TIMEOUT_MS YUNZHEN_QUEUE_RETENTION_DAYS YUNZHEN_QUEUE_MAX_MB YUNZHEN_QUEUE_HARD_LIMIT_MB
 YUNZHEN_ENVIRONMENT YUNZHEN_AUTH_SIGNING_KEY YUNZHEN_AUTH_VERIFY_KEYS YUNZHEN_SMS_GATEWAY YUNZHEN_SMS_URL
 YUNZHEN_SMS_KEY_ID YUNZHEN_SMS_SECRET YUNZHEN_SMS_TIMEOUT_MS YUNZHEN_EDGE_SIGN_IN_PER_MINUTE
 YUNZHEN_BOOTSTRAP_ADMIN_PASSWORD YUNZHEN_PAYMENT_GATEWAY YUNZHEN_PAYMENT_URL YUNZHEN_PAYMENT_NOTIFY_URL
 YUNZHEN_PAYMENT_KEY_ID YUNZHEN_PAYMENT_SECRET YUNZHEN_PAYMENT_TIMEOUT_MS YUNZHEN_PAYMENT_RECONCILE_AFTER_SECONDS
 YUNZHEN_BOOKING_HOLD_MINUTES YUNZHEN_BOOKING_DAYS_AHEAD YUNZHEN_BOOKING_OPENS_AT YUNZHEN_BOOKING_CANCEL_CUTOFF_MINUTES
 YUNZHEN_BOOKING_MAX_HOLDS YUNZHEN_SCREENING_OPENS_HOURS YUNZHEN_SCREENING_SINGLE_ENTRY
 YUNZHEN_HOSPITAL_PROVINCE "
env_ok() {
    local f=$1 name prev="" line bad=0
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line =~ ^#?(YUNZHEN_[A-Z0-9_]+)= ]]; then
            name=${BASH_REMATCH[1]}
            if [[ $known_vars != *" $name "* && $known_vars != *" $name"$'\n'* ]]; then
                echo "  $f: unknown variable $name"; bad=1
            fi
            if [[ $prev != \#* ]]; then echo "  $f: $name has no comment above it"; bad=1; fi
        elif [[ -n $line && $line != \#* ]]; then
            echo "  $f: not a VAR=value line: $line"; bad=1
        fi
        prev=$line
    done <"$f"
    return "$bad"
}
for f in yunzhen registration edge screening; do
    check "env/$f.env.example: known, commented variables" env_ok "$deploy/env/$f.env.example"
done
check "registration.env.example holds the signing key placeholder" \
    has_line "$deploy/env/registration.env.example" "YUNZHEN_AUTH_SIGNING_KEY=CHANGE-ME"
check "registration.env.example says how to generate a key" \
    grep -q 'yunzhen keys generate' "$deploy/env/registration.env.example"

# ---------------------------------------------------------------------------------------------
# install.sh: syntax and lint.

check "bash -n deploy/install.sh" bash -n "$install_sh"
if command -v shellcheck >/dev/null; then
    check "shellcheck deploy/install.sh" shellcheck "$install_sh"
    check "shellcheck Tests/deploy/verify_units.sh" shellcheck "${BASH_SOURCE[0]}"
else
    echo "skipped: shellcheck not available"
fi

# ---------------------------------------------------------------------------------------------
# systemd-analyze verify / security on temporary copies whose ExecStart= points at /bin/true
# (the real executables are not installed here, and we do not write to /opt).

# analyze_dir DIR: verify the units in DIR; print the lines that mention them; fail if any.
analyze_dir() {
    local dir=$1 out line
    out=$(cd "$dir" && systemd-analyze verify --man=no ./*.service ./*.target 2>&1)
    out=$(grep -E 'yunzhen' <<<"$out" | grep -vE '/etc/yunzhen/[a-z]+\.env')
    if [[ -n $out ]]; then
        while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$out"
        return 1
    fi
}

if command -v systemd-analyze >/dev/null; then
    copy="$work/units"
    mkdir -p "$copy"
    cp "$units_dir"/*.service "$units_dir"/*.target "$copy"/
    sed -i 's#^ExecStart=/opt/yunzhen/bin/[a-z]*$#ExecStart=/bin/true#' "$copy"/*.service
    check "systemd-analyze verify: no warnings about the yunzhen units" analyze_dir "$copy"

    # The check above must be able to fail: a copy with a bad key has to be reported.
    bad="$work/bad-units"
    cp -R "$copy" "$bad"
    sed -i 's/^UMask=0027$/UMask=0027\nNoSuchSetting=1/' "$bad/yunzhen-edge.service"
    rejects_bad() { ! analyze_dir "$bad" >/dev/null; }
    check "systemd-analyze verify catches an unknown setting (self-test)" rejects_bad

    # Exposure as systemd rates it (0 best .. 10 worst); the units score 3.2 today. Keep it <= 4.0.
    exposure_ok() {
        (cd "$copy" && systemd-analyze security --offline=yes --man=no --threshold=40 \
            "yunzhen-$1.service" >/dev/null 2>&1)
    }
    for p in "${processes[@]}"; do
        check "systemd-analyze security: yunzhen-$p exposure <= 4.0" exposure_ok "$p"
    done
else
    echo "skipped: systemd-analyze not available"
fi

# ---------------------------------------------------------------------------------------------
# install.sh into a temporary prefix, with a fake release folder.

release="$work/release"
public="$work/public"
mkdir -p "$release/Yunzhen_Registration.resources" "$public/css"
for b in "${binaries[@]}"; do
    printf '#!/bin/sh\n# fake %s\n' "$b" >"$release/$b"
    chmod 0755 "$release/$b"
done
# The fake tool answers `keys generate` as the real one does (keys with '/' and '+', as base64 has).
cat >"$release/yunzhen" <<'FAKE'
#!/bin/sh
# fake yunzhen
if [ "$1 $2" = "keys generate" ]; then
    echo "YUNZHEN_AUTH_SIGNING_KEY=fake:c2ln/+s="
    echo "YUNZHEN_AUTH_VERIFY_KEYS=fake:dmVy/+k="
fi
FAKE
echo '{}' >"$release/Yunzhen_Registration.resources/departments.json"
echo '<!doctype html><title>yunzhen</title>' >"$public/index.html"
echo 'body{}' >"$public/css/app.css"

run_install() { "$install_sh" --release "$release" --public "$public" "$@" >"$work/install.log" 2>&1; }
show_log() { sed 's/^/    | /' "$work/install.log"; }

# Dry run: prints, changes nothing.
dry="$work/dry"
mkdir -p "$dry"
if run_install --prefix "$dry" --dry-run; then
    check "install.sh --dry-run changes nothing" test -z "$(find "$dry" -mindepth 1 -print -quit)"
    check "install.sh --dry-run prints the actions" grep -q 'dry-run.*install -m 0755 .*/opt/yunzhen/bin/edge' "$work/install.log"
else
    not_ok "install.sh --dry-run exits 0"; show_log
fi

# Missing executable: refuses before changing anything.
broken="$work/broken-release"
cp -R "$release" "$broken"
rm "$broken/consult"
nothing="$work/nothing"
mkdir -p "$nothing"
if "$install_sh" --release "$broken" --public "$public" --prefix "$nothing" >"$work/install.log" 2>&1; then
    not_ok "install.sh refuses a release folder without consult"
else
    check "install.sh refuses a release folder without consult, changing nothing" \
        test -z "$(find "$nothing" -mindepth 1 -print -quit)"
    check "install.sh names the missing executable" grep -q 'missing executables.*consult' "$work/install.log"
fi

# Real install into a prefix.
root="$work/root"
mkdir -p "$root"
mode_of() { stat -c '%a' "$1"; }
# expect_mode PATH MODE
expect_mode() { [[ -e $1 && $(mode_of "$1") == "$2" ]] || { echo "  $1: mode $(mode_of "$1" 2>/dev/null || echo absent), want $2"; return 1; }; }

if run_install --prefix "$root"; then
    ok "install.sh --prefix exits 0"
    files_ok() {
        local bad=0 b f
        for b in "${binaries[@]}"; do
            expect_mode "$root/opt/yunzhen/bin/$b" 755 || bad=1
            cmp -s "$release/$b" "$root/opt/yunzhen/bin/$b" || { echo "  bin/$b differs"; bad=1; }
        done
        expect_mode "$root/opt/yunzhen/bin/Yunzhen_Registration.resources/departments.json" 644 || bad=1
        expect_mode "$root/opt/yunzhen/share/public/index.html" 644 || bad=1
        expect_mode "$root/opt/yunzhen/share/public/css/app.css" 644 || bad=1
        expect_mode "$root/opt/yunzhen/share/doc/README.md" 644 || bad=1
        for f in "$units_dir"/*; do
            expect_mode "$root/etc/systemd/system/$(basename "$f")" 644 || bad=1
            cmp -s "$f" "$root/etc/systemd/system/$(basename "$f")" || { echo "  unit $(basename "$f") differs"; bad=1; }
        done
        expect_mode "$root/etc/yunzhen" 750 || bad=1
        for f in yunzhen registration edge screening; do
            expect_mode "$root/etc/yunzhen/$f.env" 600 || bad=1
        done
        return "$bad"
    }
    check "install.sh puts executables, bundles, web clients, units and env files in place" files_ok
    check "install.sh leaves no staging folders behind" \
        test -z "$(find "$root" -name '*.new' -o -name '*.old' | head -1)"
    signing_set() {
        grep -qx 'YUNZHEN_AUTH_SIGNING_KEY=fake:c2ln/+s=' "$root/etc/yunzhen/registration.env" &&
            grep -qx 'YUNZHEN_AUTH_VERIFY_KEYS=fake:dmVy/+k=' "$root/etc/yunzhen/yunzhen.env"
    }
    check "install.sh puts a signing key in registration.env and its public key in yunzhen.env" signing_set
    signing_not_logged() { ! grep -qF 'c2ln/+s=' "$work/install.log"; }
    check "install.sh does not print the signing key" signing_not_logged

    # Second run (an upgrade): operator's config kept, key kept, executables and clients replaced.
    echo "YUNZHEN_LOG_LEVEL=debug # operator edit" >>"$root/etc/yunzhen/yunzhen.env"
    printf '#!/bin/sh\n# fake edge v2\n' >"$release/edge"
    echo 'new' >"$public/new.html"
    rm "$public/css/app.css"
    if run_install --prefix "$root"; then
        check "upgrade keeps the operator's yunzhen.env" grep -q 'operator edit' "$root/etc/yunzhen/yunzhen.env"
        check "upgrade keeps the signing key" grep -qx 'YUNZHEN_AUTH_SIGNING_KEY=fake:c2ln/+s=' \
            "$root/etc/yunzhen/registration.env"
        check "upgrade replaces the executables" cmp -s "$release/edge" "$root/opt/yunzhen/bin/edge"
        public_replaced() {
            [[ -f $root/opt/yunzhen/share/public/new.html && ! -e $root/opt/yunzhen/share/public/css/app.css ]]
        }
        check "upgrade replaces the web clients (new file in, removed file gone)" public_replaced
    else
        not_ok "install.sh --prefix, second run, exits 0"; show_log
    fi

    # The [Install] sections: enabling the target enables the six (systemctl works offline on --root).
    if command -v systemctl >/dev/null; then
        enabled_ok() {
            systemctl --root="$root" enable yunzhen.target >/dev/null 2>&1 || return 1
            local p bad=0
            [[ -L $root/etc/systemd/system/multi-user.target.wants/yunzhen.target ]] || { echo "  target not wanted by multi-user.target"; bad=1; }
            for p in "${processes[@]}"; do
                [[ -L $root/etc/systemd/system/yunzhen.target.wants/yunzhen-$p.service ]] || { echo "  yunzhen-$p.service not enabled"; bad=1; }
            done
            return "$bad"
        }
        check "systemctl enable yunzhen.target enables all six units" enabled_ok
    fi
else
    not_ok "install.sh --prefix exits 0"; show_log
fi

# ---------------------------------------------------------------------------------------------

echo "deploy: $passed passed, $failed failed"
((failed == 0))
