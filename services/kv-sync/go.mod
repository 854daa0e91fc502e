module clusterkit.dev/services/kv-sync

go 1.26.8

require clusterkit.dev/clusterkit v0.0.0

replace clusterkit.dev/clusterkit => ../../clusterkit
