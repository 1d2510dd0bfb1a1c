{{/* Names and labels. */}}
{{- define "lct.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lct.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of one component's objects: fullname-component (fullname alone for the all-in-one). */}}
{{- define "lct.componentName" -}}
{{- $ctx := index . 0 }}{{- $component := index . 1 }}
{{- if eq $component "all-in-one" }}
{{- include "lct.fullname" $ctx }}
{{- else }}
{{- printf "%s-%s" (include "lct.fullname" $ctx | trunc 50 | trimSuffix "-") $component }}
{{- end }}
{{- end }}

{{- define "lct.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llm-cost-tracker
{{- end }}

{{/* Labels of objects that belong to no one component (ConfigMap, ServiceAccount, ...). */}}
{{- define "lct.labels" -}}
{{ include "lct.commonLabels" . }}
app.kubernetes.io/name: {{ include "lct.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component's objects and pods. Argument: (list ctx component). */}}
{{- define "lct.componentLabels" -}}
{{ include "lct.commonLabels" (index . 0) }}
{{ include "lct.selectorLabels" . }}
{{- end }}

{{- define "lct.selectorLabels" -}}
{{- $ctx := index . 0 }}{{- $component := index . 1 -}}
app.kubernetes.io/name: {{ include "lct.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ $component }}
{{- end }}

{{- define "lct.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lct.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "lct.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "lct.listen" -}}
{{- $ctx := index . 0 }}{{- $port := index . 1 }}
{{- if contains ":" $ctx.Values.listenHost }}
{{- printf "[%s]:%d" $ctx.Values.listenHost (int $port) }}
{{- else }}
{{- printf "%s:%d" $ctx.Values.listenHost (int $port) }}
{{- end }}
{{- end }}

{{- define "lct.usesClickHouseServer" -}}
{{- if or .Values.clickhouse.url .Values.clickhouse.existingSecret }}true{{ end }}
{{- end }}

{{/* Fail early on combinations the schema cannot express. */}}
{{- define "lct.validate" -}}
{{- if eq .Values.mode "distributed" }}
{{- if not .Values.kafka.bootstrap }}
{{- fail "mode=distributed needs kafka.bootstrap (host:port of your brokers)" }}
{{- end }}
{{- if not (include "lct.usesClickHouseServer" .) }}
{{- fail "mode=distributed needs clickhouse.url or clickhouse.existingSecret (the embedded store is for mode=allInOne)" }}
{{- end }}
{{- if gt (int .Values.consumer.replicas) (int .Values.kafka.partitions) }}
{{- fail (printf "consumer.replicas (%d) exceeds kafka.partitions (%d): the extra consumers would get no partition" (int .Values.consumer.replicas) (int .Values.kafka.partitions)) }}
{{- end }}
{{- if and .Values.receiver.autoscaling.enabled (gt (int .Values.receiver.autoscaling.minReplicas) (int .Values.receiver.autoscaling.maxReplicas)) }}
{{- fail "receiver.autoscaling.minReplicas exceeds maxReplicas" }}
{{- end }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) }}
{{- fail "kafka.sasl.mechanism is set: kafka.sasl.existingSecret must name the Secret with the credentials" }}
{{- end }}
{{- if and .Values.kafka.tls.existingSecret (not .Values.kafka.tls.caKey) }}
{{- fail "kafka.tls.existingSecret is set: kafka.tls.caKey must name the CA key in it" }}
{{- end }}
{{- if and .Values.clickhouse.tls.certKey (not .Values.clickhouse.tls.keyKey) }}
{{- fail "clickhouse.tls.certKey is set without clickhouse.tls.keyKey" }}
{{- end }}
{{- if and .Values.kafka.tls.certKey (not .Values.kafka.tls.keyKey) }}
{{- fail "kafka.tls.certKey is set without kafka.tls.keyKey" }}
{{- end }}
{{- end }}

{{/* Pod annotations: a checksum of the config so a change rolls the pods. */}}
{{- define "lct.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Environment shared by every container: config file, store, credentials. */}}
{{- define "lct.env" -}}
- name: LCT_CONFIG
  value: /etc/llm-cost-tracker/config.toml
{{- if .Values.pricing.overrides }}
- name: LCT_PRICING_FILE
  value: /etc/llm-cost-tracker/pricing.yaml
{{- end }}
- name: LCT_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: LCT_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- if .Values.clickhouse.existingSecret }}
- name: LCT_CLICKHOUSE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.clickhouse.existingSecret }}
      key: {{ .Values.clickhouse.urlKey }}
{{- else if .Values.clickhouse.url }}
- name: LCT_CLICKHOUSE_URL
  value: {{ .Values.clickhouse.url | quote }}
{{- end }}
- name: LCT_CLICKHOUSE_DATABASE
  value: {{ .Values.clickhouse.database | quote }}
{{- with .Values.clickhouse.tls }}
{{- if .existingSecret }}
{{- if .caKey }}
- name: LCT_CLICKHOUSE_CA_FILE
  value: /etc/llm-cost-tracker/clickhouse-tls/{{ .caKey }}
{{- end }}
{{- if .certKey }}
- name: LCT_CLICKHOUSE_CLIENT_CERT_FILE
  value: /etc/llm-cost-tracker/clickhouse-tls/{{ .certKey }}
- name: LCT_CLICKHOUSE_CLIENT_KEY_FILE
  value: /etc/llm-cost-tracker/clickhouse-tls/{{ .keyKey }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.redaction.existingSecret }}
- name: LCT_REDACTION_HMAC_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redaction.existingSecret }}
      key: {{ .Values.redaction.hmacKeyKey }}
{{- end }}
{{- if .Values.kafka.bootstrap }}
- name: LCT_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
- name: LCT_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: LCT_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.usernameKey }}
- name: LCT_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- if .Values.kafka.tls.existingSecret }}
- name: LCT_KAFKA_SSL_CAFILE
  value: /etc/llm-cost-tracker/kafka-tls/{{ .Values.kafka.tls.caKey }}
{{- if .Values.kafka.tls.certKey }}
- name: LCT_KAFKA_SSL_CERTFILE
  value: /etc/llm-cost-tracker/kafka-tls/{{ .Values.kafka.tls.certKey }}
- name: LCT_KAFKA_SSL_KEYFILE
  value: /etc/llm-cost-tracker/kafka-tls/{{ .Values.kafka.tls.keyKey }}
{{- end }}
{{- end }}
- name: TMPDIR
  value: /tmp
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The receiving side also needs the bearer token collectors must present. */}}
{{- define "lct.authEnv" -}}
{{- if .Values.tls.existingSecret }}
- name: LCT_TLS_CERT_FILE
  value: /etc/llm-cost-tracker/tls/{{ .Values.tls.certKey }}
- name: LCT_TLS_KEY_FILE
  value: /etc/llm-cost-tracker/tls/{{ .Values.tls.keyKey }}
{{- if .Values.tls.clientCaKey }}
- name: LCT_TLS_CLIENT_CA_FILE
  value: /etc/llm-cost-tracker/tls/{{ .Values.tls.clientCaKey }}
{{- end }}
{{- end }}
{{- if .Values.auth.existingSecret }}
- name: LCT_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.auth.existingSecret }}
      key: {{ .Values.auth.tokenKey }}
{{- if .Values.auth.metricsTokenKey }}
- name: LCT_METRICS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.auth.existingSecret }}
      key: {{ .Values.auth.metricsTokenKey }}
{{- end }}
{{- if .Values.auth.adminTenantFromPayload }}
- name: LCT_ADMIN_TENANT_FROM_PAYLOAD
  value: "true"
{{- end }}
{{- end }}
{{- end }}

{{- define "lct.volumeMounts" -}}
- name: config
  mountPath: /etc/llm-cost-tracker
  readOnly: true
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: /etc/llm-cost-tracker/kafka-tls
  readOnly: true
{{- end }}
{{- if .Values.clickhouse.tls.existingSecret }}
- name: clickhouse-tls
  mountPath: /etc/llm-cost-tracker/clickhouse-tls
  readOnly: true
{{- end }}
{{- if .Values.tls.existingSecret }}
- name: tls
  mountPath: /etc/llm-cost-tracker/tls
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "lct.volumes" -}}
- name: config
  configMap:
    name: {{ include "lct.fullname" . }}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- if .Values.clickhouse.tls.existingSecret }}
- name: clickhouse-tls
  secret:
    secretName: {{ .Values.clickhouse.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- if .Values.tls.existingSecret }}
- name: tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* HTTP probes (HTTPS with tls); TCP checks under mutual TLS, where the kubelet has no client certificate. */}}
{{- define "lct.probe" -}}
{{- $ctx := index . 0 }}{{- $path := index . 1 -}}
{{- if $ctx.Values.tls.clientCaKey | and $ctx.Values.tls.existingSecret }}
tcpSocket: {port: http}
{{- else }}
httpGet: {path: {{ $path }}, port: http, scheme: {{ ternary "HTTPS" "HTTP" (not (empty $ctx.Values.tls.existingSecret)) }}}
{{- end }}
{{- end }}

{{- define "lct.probes" -}}
startupProbe:
  {{- include "lct.probe" (list . "/healthz") | nindent 2 }}
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
livenessProbe:
  {{- include "lct.probe" (list . "/healthz") | nindent 2 }}
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  {{- include "lct.probe" (list . "/readyz") | nindent 2 }}
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
{{- end }}

{{/*
One pod template. Arguments: a dict with ctx (root context), component, args (the CLI arguments
after the image's `llm-cost-tracker` entrypoint), values (the component's values), grpc (bool:
the pod listens for OTLP), data ("" for none, "claim" for a volumeClaimTemplate named data,
"emptyDir") mounted at /var/lib/llm-cost-tracker.
*/}}
{{- define "lct.podTemplate" -}}
{{- $ctx := .ctx }}{{- $v := .values -}}
metadata:
  labels:
    {{- include "lct.componentLabels" (list $ctx .component) | nindent 4 }}
    {{- with $ctx.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- include "lct.podAnnotations" $ctx | nindent 4 }}
spec:
  serviceAccountName: {{ include "lct.serviceAccountName" $ctx }}
  automountServiceAccountToken: {{ $ctx.Values.serviceAccount.automountToken }}
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $ctx.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $ctx.Values.terminationGracePeriodSeconds }}
  containers:
    - name: {{ .component }}
      image: {{ include "lct.image" $ctx }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args:
        {{- range concat .args ($v.extraArgs | default list) }}
        - {{ . | quote }}
        {{- end }}
      ports:
        {{- if .grpc }}
        - name: grpc
          containerPort: {{ $ctx.Values.ports.grpc }}
          protocol: TCP
        - name: otlp-http
          containerPort: {{ $ctx.Values.ports.otlpHttp }}
          protocol: TCP
        {{- end }}
        - name: http
          containerPort: {{ $ctx.Values.ports.http }}
          protocol: TCP
        {{- if .sql }}
        - name: sql
          containerPort: {{ $ctx.Values.ports.sql }}
          protocol: TCP
        {{- end }}
      env:
        {{- include "lct.env" $ctx | nindent 8 }}
        {{- if .grpc }}
        {{- include "lct.authEnv" $ctx | nindent 8 }}
        {{- end }}
      {{- include "lct.probes" $ctx | nindent 6 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $ctx.Values.securityContext | nindent 8 }}
      volumeMounts:
        {{- include "lct.volumeMounts" $ctx | nindent 8 }}
        {{- if .data }}
        - name: data
          mountPath: /var/lib/llm-cost-tracker
        {{- end }}
  volumes:
    {{- include "lct.volumes" $ctx | nindent 4 }}
    {{- if eq .data "emptyDir" }}
    - name: data
      emptyDir: {}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
