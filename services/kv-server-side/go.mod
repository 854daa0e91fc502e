module clusterkit.dev/services/kv-server-side

go 1.26.8

require clusterkit.dev/clusterkit v0.0.0

replace clusterkit.dev/clusterkit => ../../clusterkit
