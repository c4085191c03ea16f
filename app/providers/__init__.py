"""Model providers behind one interface (`Provider`), chosen by `APP_PROVIDER`."""
