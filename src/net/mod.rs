//! Network migration: wifi and ethernet profiles of the running system (NetworkManager,
//! wpa_supplicant, connman) turned into NetworkManager keyfiles for balenaOS.
#![forbid(unsafe_code)]
