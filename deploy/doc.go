// Package deploy holds no code: it owns the deployment files for
// `convsync run` (systemd/, container/, kubernetes/) and the test that checks
// them, so a hardening directive or the single-writer rule cannot be lost in
// an edit. docs/deployment.md explains them.
package deploy
