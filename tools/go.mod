module clusterkit.dev/tools

go 1.26.8
