"""The metric-name reader that the dashboard and alert checks rely on."""

from tests.support.promql import metric_names


def test_metric_names_leave_out_functions_labels_keywords_and_durations():
    expr = ('histogram_quantile(0.99, sum by (le, route) (rate(stock_http_request_duration_seconds_bucket'
            '{route=~"/v1/commands|/v1/batches", status!="500"}[$__rate_interval] offset 5m)))')
    assert metric_names(expr) == {"stock_http_request_duration_seconds_bucket"}


def test_metric_names_find_every_operand():
    expr = ('sum(rate(a_total{outcome!~"x"}[5m])) / ignoring(x) sum(rate(b_total[5m])) > 0.8 * '
            'max(c_gauge) and on() up == 0 unless 1e3 < d')
    assert metric_names(expr) == {"a_total", "b_total", "c_gauge", "up", "d"}
    assert metric_names("stock_queue_oldest_job_age_seconds") == {"stock_queue_oldest_job_age_seconds"}
