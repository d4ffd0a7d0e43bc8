/* Offline: the certificates of a files-provider directory. */
#ifndef ZTUNNEL_CTL_CERTIFICATES_FILES_H
#define ZTUNNEL_CTL_CERTIFICATES_FILES_H

/* One line per DIR/<namespace>/<service account>/: identity, serial,
 * validity, issuer, state. The exit status: 1 when any is not usable. */
int certificates_files_list(const char *dir, const char *td);

#endif
