#!/bin/awk -f
# summarize: per-region totals of an orders CSV with the header
# order_id,region,amount, as a CSV on standard output: the regions in
# order, then all of them together.
#
#	region,orders,revenue,avg_order
#	apac,67,15911.69,237.49
#	...
#	all,200,50799.00,254.00
#
# A row whose amount is not a number fails the summary, naming its line,
# rather than counting as zero.
function fail(msg) {
	print "summarize: " FILENAME ": " msg > "/dev/stderr"
	failed = 1
	exit 1
}
BEGIN { FS = "," }
NR == 1 {
	if ($0 != "order_id,region,amount")
		fail("want the header order_id,region,amount, got " $0)
	next
}
$3 !~ /^-?[0-9]+(\.[0-9]+)?$/ { fail("line " NR ": amount " $3 " is not a number") }
{
	orders[$2]++
	revenue[$2] += $3
	n++
	total += $3
}
END {
	if (failed)
		exit 1
	if (NR == 0)
		fail("empty, not even a header")
	print "region,orders,revenue,avg_order"
	for (r in orders)
		printf "%s,%d,%.2f,%.2f\n", r, orders[r], revenue[r], revenue[r] / orders[r] | "sort"
	close("sort")
	printf "all,%d,%.2f,%.2f\n", n, total, n ? total / n : 0
}
