# Installation and the Debian package (CPack DEB): `cmake --build --preset release --target
# package` writes build/mles_<version>_<arch>.deb. Contents: /usr/bin/mles, the systemd unit,
# /etc/default/mles (a conffile), the demo page under /usr/share/mles/www and the man page
# mles.1 (generated from --help by Debian's help2man). Depends from dpkg-shlibdeps.
include(GNUInstallDirs)

install(TARGETS mles RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/www/ DESTINATION ${CMAKE_INSTALL_DATADIR}/mles/www)
# Debian's systemd looks in /lib/systemd/system (also /usr/lib/... with merged /usr).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/mles.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/default/mles DESTINATION /etc/default)

find_program(MLES_HELP2MAN help2man)
if(MLES_HELP2MAN)
  set(manpage ${PROJECT_BINARY_DIR}/mles.1.gz)
  add_custom_command(
    OUTPUT ${manpage}
    COMMAND ${MLES_HELP2MAN} --no-info --section 1 --name "Mles v2 publish/subscribe server over TLS WebSocket"
            --include ${PROJECT_SOURCE_DIR}/packaging/mles.h2m --output ${PROJECT_BINARY_DIR}/mles.1 $<TARGET_FILE:mles>
    COMMAND gzip -9nf ${PROJECT_BINARY_DIR}/mles.1
    DEPENDS mles ${PROJECT_SOURCE_DIR}/packaging/mles.h2m
    COMMENT "Generating the man page mles.1 from mles --help (help2man)"
    VERBATIM)
  add_custom_target(mles_manpage ALL DEPENDS ${manpage})
  install(FILES ${manpage} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  install(CODE "message(FATAL_ERROR \"help2man is missing: the man page cannot be built (scripts/install-deps.sh installs it)\")")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mles)
set(CPACK_PACKAGE_VENDOR "mles-cpp")
set(CPACK_PACKAGE_CONTACT "mles-cpp maintainers <mles-cpp@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Mles v2 publish/subscribe server over TLS WebSocket")
set(CPACK_PACKAGE_DESCRIPTION
    "A drop-in replacement of the Rust reference Mles server in C++20: channels, history,\n"
    "ACME certificates, static files; runs as the systemd service mles.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
include(CPack)
