"""Load runs: Locust through the reference service, and the stage gate's verdict on what it recorded."""
