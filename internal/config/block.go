package config

// DecodeBlock decodes one YAML block — a plugin's configuration — strictly
// into v, a non-nil pointer, with the loader's own rules: unknown keys and
// mistyped values are reported together as *Errors with file:line:col. It
// does not validate. Plugin tests use it (through plugins/plugintest) so
// that they decode exactly as a gateway does.
func DecodeBlock(file string, data []byte, v any) error {
	var errs errorList
	src, body, ok := parseDocument(file, data, nil, &errs)
	if !ok {
		return errs.err()
	}
	return Raw{Node: body, src: src}.Decode(v)
}
