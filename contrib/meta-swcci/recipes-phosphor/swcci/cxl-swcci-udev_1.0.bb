# SPDX-License-Identifier: GPL-2.0
SUMMARY = "udev rules and group for the /dev/cxl/switchN nodes of cxl_swcci"
DESCRIPTION = "Gives the switch mailbox CCI nodes of the cxl_swcci driver to a \
               dedicated group (cxl-fm by default), mode 0660, tags them for \
               systemd and links /dev/cxl/by-serial/<serial> to each switch's \
               node. Raw commands additionally need CAP_SYS_RAWIO."
SECTION = "base"
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://60-cxl-swcci.rules;beginline=1;endline=1;md5=daad6f7f7a0a286391cd7773ccf79340"

SRC_URI = "file://60-cxl-swcci.rules file://cxl-swcci-serial"

S = "${UNPACKDIR}"

inherit allarch useradd

# The group that may open /dev/cxl/switchN.
SWCCI_GROUP ?= "cxl-fm"

USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system ${SWCCI_GROUP}"

do_install() {
    install -d ${D}${nonarch_base_libdir}/udev/rules.d
    sed -e 's/GROUP="cxl-fm"/GROUP="${SWCCI_GROUP}"/' ${S}/60-cxl-swcci.rules \
        > ${D}${nonarch_base_libdir}/udev/rules.d/60-cxl-swcci.rules
    chmod 0644 ${D}${nonarch_base_libdir}/udev/rules.d/60-cxl-swcci.rules
    # The rules' PROGRAM (a POSIX sh script): udev runs programs named without a path from
    # its own directory.
    install -m 0755 ${S}/cxl-swcci-serial ${D}${nonarch_base_libdir}/udev/cxl-swcci-serial
}

# ${nonarch_base_libdir}/udev is in the default FILES:${PN}.
