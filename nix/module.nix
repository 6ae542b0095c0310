# NixOS module: `rbtop serve` as a service, the Prometheus exporter of a
# fleet of Nix remote builders, optionally keeping a live machines file
# that nix.conf's `builders` points at, so Nix stops trying dead builders.
#
#   imports = [ rbtop.nixosModules.rbtop ];
#   services.rbtop = {
#     enable = true;
#     liveMachines.enable = true;   # nix.conf: builders = @/run/rbtop/machines
#   };
#
# The service runs as root, the nix-daemon's account, so it reaches the
# builders with the SSH identity and known_hosts that Nix's build hook
# uses, and sees what Nix sees.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.rbtop;
  live = cfg.liveMachines;
  args = [
    "--machines"
    cfg.machinesFile
    "serve"
    "--listen"
    cfg.listen
    "--refresh"
    (toString cfg.refreshInterval)
    "--timeout"
    (toString cfg.timeout)
  ]
  ++ lib.optionals live.enable [
    "--write-machines"
    live.path
    "--out-after"
    (toString live.outAfter)
    "--back-after"
    (toString live.backAfter)
  ]
  ++ lib.optionals (cfg.buildEvery != null) [
    "--build-every"
    (toString cfg.buildEvery)
  ]
  ++ cfg.extraArgs;
in
{
  options.services.rbtop = {
    enable = lib.mkEnableOption "rbtop serve, a Prometheus exporter for Nix remote builders";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The rbtop package (the flake's module sets its own).";
    };

    listen = lib.mkOption {
      type = lib.types.str;
      default = "127.0.0.1:9945";
      description = "ADDRESS:PORT for /metrics and the status page. Loopback by default.";
    };

    machinesFile = lib.mkOption {
      type = lib.types.str;
      default = "/etc/nix/machines";
      description = ''
        The full list of builders, in Nix's machines syntax (what
        nix.buildMachines writes). rbtop probes every one of them.
      '';
    };

    refreshInterval = lib.mkOption {
      type = lib.types.number;
      default = 5;
      description = "Seconds between two probes of an up builder (at least 0.5).";
    };

    timeout = lib.mkOption {
      type = lib.types.number;
      default = 10;
      description = "Seconds one probe of one builder may take.";
    };

    buildEvery = lib.mkOption {
      type = lib.types.nullOr (lib.types.ints.between 60 86400);
      default = null;
      example = 900;
      description = ''
        Seconds between two canary builds on every builder that is up (a
        tiny derivation built through the nix-daemon, proof that Nix can
        build there), exported as rbtop_builder_canary_success. Off when
        null.
      '';
    };

    sshOpts = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "NIX_SSHOPTS for rbtop's ssh, when the nix-daemon has some.";
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "More arguments for `rbtop serve`.";
    };

    liveMachines = {
      enable = lib.mkEnableOption ''
        the live machines file, and nix.conf's `builders = @PATH` pointing at
        it. Until rbtop has probed every builder once, the file does not
        exist and Nix has no builders (after a restart the last file stays)
      '';

      path = lib.mkOption {
        type = lib.types.str;
        default = "/run/rbtop/machines";
        description = "Where the live machines file is kept (mode 0644, replaced atomically).";
      };

      outAfter = lib.mkOption {
        type = lib.types.ints.positive;
        default = 2;
        description = "Failed probes in a row before a builder leaves the file.";
      };

      backAfter = lib.mkOption {
        type = lib.types.ints.positive;
        default = 2;
        description = "Good probes in a row before it comes back.";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !live.enable || live.path != cfg.machinesFile;
        message = "services.rbtop.liveMachines.path must not be services.rbtop.machinesFile: rbtop would read its own output";
      }
    ];

    systemd.services.rbtop = {
      description = "rbtop serve: Prometheus exporter for Nix remote builders";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "nix-daemon.service"
      ];
      environment = {
        # The nix-daemon's identity: root's ~/.ssh, as Nix's build hook uses.
        HOME = "/root";
        XDG_STATE_HOME = "/var/lib";
        XDG_RUNTIME_DIR = "/run/rbtop";
      }
      // lib.optionalAttrs (cfg.sshOpts != null) { NIX_SSHOPTS = cfg.sshOpts; };
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/rbtop ${lib.escapeShellArgs args}";
        User = "root";
        Restart = "always";
        RestartSec = 5;
        # The live file outlives a restart: Nix keeps its last builders.
        RuntimeDirectory = "rbtop";
        RuntimeDirectoryPreserve = "yes";
        StateDirectory = "rbtop";
        ProtectSystem = "strict";
        ProtectHome = "read-only";
        ReadWritePaths = lib.optional live.enable (dirOf live.path);
        PrivateTmp = true;
        NoNewPrivileges = true;
      };
    };

    nix.settings = lib.mkIf live.enable {
      # Over nixpkgs' own `builders` (empty without distributedBuilds).
      builders = lib.mkForce "@${live.path}";
    };
  };
}
