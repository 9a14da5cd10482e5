package proxy

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/smithy-go/encoding/cbor"
)

// The Go SDK speaks Smithy RPC v2 CBOR to CloudWatch
// (POST /service/GraniteServiceVersion20100801/operation/{Operation});
// moto speaks only CloudWatch's query protocol. The proxy translates the
// one operation ec2patch uses, DescribeAlarms.
const cloudWatchRPCPrefix = "/service/GraniteServiceVersion20100801/operation/"

// cloudWatchRPCOperation names the operation of a CBOR CloudWatch request.
func cloudWatchRPCOperation(r *http.Request) (string, bool) {
	op, ok := strings.CutPrefix(r.URL.Path, cloudWatchRPCPrefix)
	return op, ok && op != "" && !strings.Contains(op, "/")
}

// describeAlarmsCBOR answers DescribeAlarms by asking moto in the query
// protocol and encoding its answer in CBOR.
func (p *Proxy) describeAlarmsCBOR(w http.ResponseWriter, r *http.Request, body []byte, c *Call) {
	v, err := cbor.Decode(body)
	in, ok := v.(cbor.Map)
	if len(body) == 0 {
		in, ok, err = cbor.Map{}, true, nil
	}
	if err != nil || !ok {
		writeCBORError(w, http.StatusBadRequest, "SerializationException", fmt.Sprintf("request is not a CBOR map: %v", err))
		return
	}
	form := url.Values{"Action": {"DescribeAlarms"}, "Version": {"2010-08-01"}}
	for _, key := range []string{"AlarmNames", "AlarmTypes"} {
		list, _ := in[key].(cbor.List)
		for i, item := range list {
			if s, ok := item.(cbor.String); ok {
				form.Set(fmt.Sprintf("%s.member.%d", key, i+1), string(s))
			}
		}
	}
	for _, key := range []string{"AlarmNamePrefix", "StateValue", "ActionPrefix", "NextToken"} {
		if s, ok := in[key].(cbor.String); ok {
			form.Set(key, string(s))
		}
	}
	if n, err := cbor.AsInt64(in["MaxRecords"]); err == nil && in["MaxRecords"] != nil {
		form.Set("MaxRecords", strconv.FormatInt(n, 10))
	}
	c.Form = form
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.cfg.Upstream+"/", strings.NewReader(form.Encode()))
	if err != nil {
		writeCBORError(w, http.StatusInternalServerError, "InternalServiceFault", err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", emulatorAuth("monitoring", c.Region))
	resp, err := p.client.Do(req)
	if err != nil {
		writeCBORError(w, http.StatusInternalServerError, "InternalServiceFault", err.Error())
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		writeCBORError(w, resp.StatusCode, "InvalidParameterValue", string(data))
		return
	}
	var out describeAlarmsResponse
	if err := xml.Unmarshal(data, &out); err != nil {
		writeCBORError(w, http.StatusInternalServerError, "InternalServiceFault", "moto's DescribeAlarms answer: "+err.Error())
		return
	}
	result := cbor.Map{"MetricAlarms": alarmsCBOR(out.MetricAlarms), "CompositeAlarms": alarmsCBOR(out.CompositeAlarms)}
	if out.NextToken != "" {
		result["NextToken"] = cbor.String(out.NextToken)
	}
	writeCBOR(w, http.StatusOK, result)
}

type alarmXML struct {
	AlarmName   string `xml:"AlarmName"`
	AlarmArn    string `xml:"AlarmArn"`
	StateValue  string `xml:"StateValue"`
	StateReason string `xml:"StateReason"`
}

type describeAlarmsResponse struct {
	MetricAlarms    []alarmXML `xml:"DescribeAlarmsResult>MetricAlarms>member"`
	CompositeAlarms []alarmXML `xml:"DescribeAlarmsResult>CompositeAlarms>member"`
	NextToken       string     `xml:"DescribeAlarmsResult>NextToken"`
}

func alarmsCBOR(alarms []alarmXML) cbor.List {
	list := cbor.List{}
	for _, a := range alarms {
		list = append(list, cbor.Map{"AlarmName": cbor.String(a.AlarmName), "AlarmArn": cbor.String(a.AlarmArn),
			"StateValue": cbor.String(a.StateValue), "StateReason": cbor.String(a.StateReason)})
	}
	return list
}

func writeCBOR(w http.ResponseWriter, status int, v cbor.Map) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(status)
	_, _ = io.Copy(w, bytes.NewReader(cbor.Encode(v)))
}

func writeCBORError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	writeCBOR(w, status, cbor.Map{"__type": cbor.String(code), "message": cbor.String(msg)})
}
