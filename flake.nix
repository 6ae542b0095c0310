{
  description = "rbtop: a terminal UI for operators of a fleet of Nix remote builders";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      rust-overlay,
    }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];

      # Cargo.toml is the single source of truth for the version.
      cargoToml = builtins.fromTOML (builtins.readFile ./Cargo.toml);

      # Everything that depends on the system, computed once per system and
      # shared by all outputs below.
      perSystem = lib.genAttrs systems (
        system:
        let
          pkgs = import nixpkgs {
            inherit system;
            overlays = [ rust-overlay.overlays.default ];
          };

          # One pinned toolchain for building, linting and the dev shell, so
          # `nix build`, `nix flake check` and `nix develop` agree exactly.
          # The `default` profile already ships clippy and rustfmt; they are
          # listed anyway to make the dependency explicit. rust-src is for
          # rust-analyzer in the dev shell.
          toolchain = pkgs.rust-bin.stable."1.95.0".default.override {
            extensions = [
              "rust-src"
              "clippy"
              "rustfmt"
            ];
          };

          rustPlatform = pkgs.makeRustPlatform {
            cargo = toolchain;
            rustc = toolchain;
          };

          # A git flake only sees tracked files, so target/ (gitignored) is
          # already absent there; this also keeps it out of `path:` flakes
          # and `nix build path:.`, where a stale target/ would otherwise be
          # copied to the store and change the source hash on every build.
          src = lib.cleanSourceWith {
            src = lib.cleanSource ./.;
            filter = path: type: !(type == "directory" && path == toString ./target);
          };

          commonArgs = {
            pname = "rbtop";
            inherit (cargoToml.package) version;
            inherit src;
            cargoLock.lockFile = ./Cargo.lock;

            meta = {
              description = "Terminal UI for operators of a fleet of Nix remote builders";
              license = with lib.licenses; [
                mit
                asl20
              ];
              mainProgram = "rbtop";
              platforms = systems;
            };
          };

          # The package itself does not run the test suite, so `nix build`
          # and `nix run` stay fast; checks.default below does.
          rbtop = rustPlatform.buildRustPackage (commonArgs // { doCheck = false; });
        in
        {
          inherit
            pkgs
            toolchain
            rustPlatform
            src
            commonArgs
            rbtop
            ;
        }
      );

      forAllSystems = f: lib.mapAttrs (_system: f) perSystem;
    in
    {
      # `services.rbtop`: rbtop serve as a service (nix/module.nix), with
      # this flake's package.
      nixosModules.rbtop =
        { pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.rbtop.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.rbtop;
        };
      nixosModules.default = self.nixosModules.rbtop;

      packages = forAllSystems (
        { rbtop, ... }:
        {
          inherit rbtop;
          default = rbtop;
        }
      );

      apps = forAllSystems (
        { rbtop, ... }:
        {
          default = {
            type = "app";
            program = "${rbtop}/bin/rbtop";
            meta.description = rbtop.meta.description;
          };
        }
      );

      devShells = forAllSystems (
        { pkgs, toolchain, ... }:
        {
          default = pkgs.mkShell {
            packages = [
              toolchain
              pkgs.cargo-nextest
              # The integration tests drive a real Nix and a real sshd.
              pkgs.nix
              pkgs.openssh
              pkgs.tmux
            ];
          };
        }
      );

      checks = forAllSystems (
        {
          pkgs,
          toolchain,
          rustPlatform,
          src,
          commonArgs,
          ...
        }:
        {
          # The test suite inside the build sandbox, except tests/fleet_check.rs:
          # the loopback fleet needs root, mount namespaces and sshd, which a
          # sandbox has not (tests/run-all.sh runs it). Tests never skip
          # themselves, so fleet_check and dashboard_tui (the dashboard in
          # tmux against the fleet) are left out here by name.
          default = rustPlatform.buildRustPackage (
            commonArgs
            // {
              pname = "rbtop-tests";
              doCheck = true;
              cargoTestFlags = [
                "--lib"
                # The front end's own tests, the TUI's view snapshots among them.
                "--bins"
                "--test"
                "cli"
                "--test"
                "explain_cli"
                "--test"
                "flake"
                "--test"
                "hostile_cli"
                "--test"
                "hostile_files"
                "--test"
                "hostile_props"
                "--test"
                "internal_json"
                "--test"
                "layout"
                "--test"
                "lix_machines"
                "--test"
                "log_cli"
                "--test"
                "machines_grammar"
                "--test"
                "nix_test_data"
                "--test"
                "nixconf_resolution"
                "--test"
                "protocol_handshakes"
                "--test"
                "slots_occupancy"
                # promtool on the alert rules, the NixOS module evaluated.
                "--test"
                "deployment_assets"
              ];
              # tests/flake.rs parses this flake with nix-instantiate; the
              # check tests run the ssh client and local nix-store.
              nativeCheckInputs = [
                pkgs.nix
                pkgs.openssh
                # promtool, for the alert rules in assets/.
                pkgs.prometheus
              ]
              # The facts loop's no-fork test counts its forks with strace.
              ++ pkgs.lib.optional pkgs.stdenv.isLinux pkgs.strace;
              preCheck = ''
                # The sandbox's HOME (/homeless-shelter) does not exist.
                export HOME="$TMPDIR"
              '';
            }
          );

          # clippy over every target, warnings denied, with the vendored
          # dependencies that buildRustPackage sets up. Replaces the build and
          # install phases; the output is an empty marker directory.
          clippy = rustPlatform.buildRustPackage (
            commonArgs
            // {
              pname = "rbtop-clippy";
              nativeBuildInputs = [ toolchain ];
              buildPhase = ''
                runHook preBuild
                cargo clippy --all-targets --offline -- -D warnings
                runHook postBuild
              '';
              doCheck = false;
              installPhase = ''
                runHook preInstall
                mkdir -p "$out"
                runHook postInstall
              '';
            }
          );

          # Every script rbtop runs on a builder, read as POSIX sh (as
          # tests/run-all.sh does).
          shellcheck =
            pkgs.runCommand "rbtop-shellcheck"
              {
                nativeBuildInputs = [ pkgs.shellcheck ];
              }
              ''
                shellcheck -s sh ${src}/src/remote/scripts/*.sh
                mkdir -p "$out"
              '';

          # Formatting needs neither dependencies nor a build.
          fmt =
            pkgs.runCommand "rbtop-fmt"
              {
                nativeBuildInputs = [ toolchain ];
              }
              ''
                export HOME="$TMPDIR"
                cd ${src}
                cargo fmt --check
                mkdir -p "$out"
              '';
        }
      );
    };
}
