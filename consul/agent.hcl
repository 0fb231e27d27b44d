# Consul agent for the compose stack: a single dev-mode server with the web UI.
# Mounted read-only; the container's command adds this directory with -config-dir.
datacenter = "dc1"
node_name  = "consul"
log_level  = "INFO"

ui_config {
  enabled = true
}

ports {
  http = 8500
  dns  = 8600
}
