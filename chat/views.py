from django.http import HttpResponse


async def page(request):
    return HttpResponse("ragsite")


async def source(request, document_id):
    return HttpResponse("source")
