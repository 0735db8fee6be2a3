//! FAT12/16/32 reader and writer in user space, over a `Read + Write + Seek` view of one
//! partition. balenaOS's boot partition is written without the kernel's vfat driver.
#![forbid(unsafe_code)]
