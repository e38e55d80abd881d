package httpget

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/sluicegw/sluice/entrypoints/internal/wire"
	"github.com/sluicegw/sluice/mediation"
)

// format is one rendering of a page.
type format struct {
	mediaType   string // what Accept names
	contentType string // what the response says
	render      func(*bytes.Buffer, page)
}

var (
	formatJSON  = &format{"application/json", "application/json", renderJSON}
	formatXML   = &format{"application/xml", "application/xml; charset=utf-8", renderXML}
	formatText  = &format{"text/plain", "text/plain; charset=utf-8", renderText}
	formats     = []*format{formatJSON, formatXML, formatText}
	formatTypes = []string{formatJSON.mediaType, formatXML.mediaType, formatText.mediaType}
)

// negotiate picks the format the client prefers (JSON on a tie, and when
// there is no Accept header), or nil when it accepts none.
func negotiate(r *http.Request) *format {
	best := wire.Negotiate(r.Header.Values("Accept"), formatTypes...)
	for _, f := range formats {
		if f.mediaType == best {
			return f
		}
	}
	return nil
}

// page is what one GET answers.
type page struct {
	items      []*mediation.Message
	nextCursor string
	limit      int
	cfg        *Config
}

func render(f *format, p page) []byte {
	var buf bytes.Buffer
	f.render(&buf, p)
	return buf.Bytes()
}

func itemID(m *mediation.Message) string {
	if m.Cursor != "" {
		return m.Cursor
	}
	return m.Identity()
}

// --- JSON ---

type jsonPage struct {
	Items      []jsonItem     `json:"items"`
	Pagination jsonPagination `json:"pagination"`
}

type jsonItem struct {
	ID       string              `json:"id"`
	Content  string              `json:"content"`
	Encoding string              `json:"encoding,omitempty"`
	Headers  map[string][]string `json:"headers,omitempty"`
	Metadata map[string]string   `json:"metadata,omitempty"`
}

type jsonPagination struct {
	NextCursor string `json:"nextCursor"`
	Limit      int    `json:"limit"`
}

func renderJSON(buf *bytes.Buffer, p page) {
	out := jsonPage{Items: make([]jsonItem, 0, len(p.items)), Pagination: jsonPagination{NextCursor: p.nextCursor, Limit: p.limit}}
	for _, m := range p.items {
		it := jsonItem{ID: itemID(m)}
		if utf8.Valid(m.Content) {
			it.Content = string(m.Content)
		} else {
			it.Content, it.Encoding = base64.StdEncoding.EncodeToString(m.Content), "base64"
		}
		if p.cfg.HeadersInPayload {
			it.Headers = m.Headers
		}
		if p.cfg.MetadataInPayload {
			it.Metadata = m.AllMetadata()
		}
		out.Items = append(out.Items, it)
	}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // content is data, not HTML
	_ = enc.Encode(out)      // cannot fail: strings and maps of strings only
}

// --- XML ---

type xmlPage struct {
	XMLName    xml.Name      `xml:"response"`
	Items      xmlItems      `xml:"items"`
	Pagination xmlPagination `xml:"pagination"`
}

type xmlItems struct {
	Item []xmlItem `xml:"item"`
}

type xmlItem struct {
	ID       string      `xml:"id"`
	Content  xmlContent  `xml:"content"`
	Headers  *xmlHeaders `xml:"headers"`
	Metadata *xmlMeta    `xml:"metadata"`
}

type xmlContent struct {
	Encoding string `xml:"encoding,attr,omitempty"`
	Text     string `xml:",chardata"`
}

type xmlHeaders struct {
	Header []xmlHeader `xml:"header"`
}

type xmlHeader struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

type xmlMeta struct {
	Entry []xmlEntry `xml:"entry"`
}

type xmlEntry struct {
	Key   string `xml:"key,attr"`
	Value string `xml:",chardata"`
}

type xmlPagination struct {
	NextCursor string `xml:"nextCursor"`
	Limit      int    `xml:"limit"`
}

func renderXML(buf *bytes.Buffer, p page) {
	out := xmlPage{Pagination: xmlPagination{NextCursor: p.nextCursor, Limit: p.limit}}
	out.Items.Item = make([]xmlItem, 0, len(p.items))
	for _, m := range p.items {
		it := xmlItem{ID: itemID(m)}
		if xmlSafe(m.Content) {
			it.Content.Text = string(m.Content)
		} else {
			it.Content = xmlContent{Encoding: "base64", Text: base64.StdEncoding.EncodeToString(m.Content)}
		}
		if p.cfg.HeadersInPayload {
			it.Headers = &xmlHeaders{}
			for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
				for _, v := range m.Headers[k] {
					it.Headers.Header = append(it.Headers.Header, xmlHeader{Name: k, Value: v})
				}
			}
		}
		if p.cfg.MetadataInPayload {
			it.Metadata = &xmlMeta{}
			md := m.AllMetadata()
			for _, k := range slices.Sorted(maps.Keys(md)) {
				it.Metadata.Entry = append(it.Metadata.Entry, xmlEntry{Key: k, Value: md[k]})
			}
		}
		out.Items.Item = append(out.Items.Item, it)
	}
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(buf).Encode(out) // cannot fail: strings only
	buf.WriteByte('\n')
}

// xmlSafe reports whether b is UTF-8 made only of characters XML 1.0 can
// carry (the Char production); the encoder escapes the rest of the syntax.
func xmlSafe(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		if !(r == 0x09 || r == 0x0A || r == 0x0D ||
			(r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)) {
			return false
		}
		b = b[size:]
	}
	return true
}

// --- text/plain ---

func renderText(buf *bytes.Buffer, p page) {
	buf.WriteString("items:\n")
	for _, m := range p.items {
		buf.WriteString("item:\nid: ")
		buf.WriteString(itemID(m))
		if utf8.Valid(m.Content) {
			buf.WriteString("\ncontent: ")
			buf.Write(m.Content)
		} else {
			buf.WriteString("\ncontent (base64): ")
			buf.WriteString(base64.StdEncoding.EncodeToString(m.Content))
		}
		buf.WriteByte('\n')
		if p.cfg.HeadersInPayload {
			buf.WriteString("headers:")
			sep := " "
			for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
				for _, v := range m.Headers[k] {
					buf.WriteString(sep + k + "=" + v)
					sep = ", "
				}
			}
			buf.WriteByte('\n')
		}
		if p.cfg.MetadataInPayload {
			buf.WriteString("metadata:")
			sep := " "
			md := m.AllMetadata()
			for _, k := range slices.Sorted(maps.Keys(md)) {
				buf.WriteString(sep + k + "=" + md[k])
				sep = ", "
			}
			buf.WriteByte('\n')
		}
	}
	buf.WriteString("pagination:\nnextCursor: ")
	buf.WriteString(p.nextCursor)
	buf.WriteString("\nlimit: ")
	buf.WriteString(strconv.Itoa(p.limit))
	buf.WriteByte('\n')
}
