/*
 * version.h - the release this source is: one place for "-V" and the
 * build_info metric.
 */
#ifndef HALO_VERSION_H
#define HALO_VERSION_H

#define HALO_MILTER_VERSION "0.1"

#endif
